"""`liandong cap check` and `cap convert` on EDXL-DE envelopes, in real subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

LIANDONG = [sys.executable, "-c", "from hub.cli import main; main()"]
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DE10 = FIXTURES / "edxl" / "de10_taipu_spill.xml"
DE20 = FIXTURES / "edxl" / "de20_taipu_exercise.xml"
MISMATCH = FIXTURES / "edxl" / "de10_status_mismatch.xml"
CAP = FIXTURES / "cap" / "liandong_taipu_spill.xml"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LIANDONG, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_cap_check_prints_ok_or_the_problem_per_file_and_fails_if_any_fails(
    tmp_path: Path,
) -> None:
    laughs = tmp_path / "laughs.xml"
    laughs.write_bytes(
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]>'
        b'<EDXLDistribution xmlns="urn:oasis:names:tc:emergency:EDXL:DE:1.0">&a;'
        b"</EDXLDistribution>"
    )
    done = _cli("cap", "check", str(DE10), str(DE20), str(CAP))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"{DE10}: OK", f"{DE20}: OK", f"{CAP}: OK"]
    done = _cli("cap", "check", str(DE10), str(MISMATCH), str(laughs))
    assert done.returncode == 1
    ok, mismatch, hostile = done.stdout.splitlines()
    assert ok == f"{DE10}: OK"
    assert mismatch.startswith(f"{MISMATCH}: line 47: element 'status': content object 1:")
    assert "CAP status 'Actual' disagrees" in mismatch and "'Exercise'" in mismatch
    assert hostile.startswith(f"{laughs}: line 1: DTDs are not accepted")


def test_cap_convert_writes_the_distribution_with_its_incidents_as_json() -> None:
    done = _cli("cap", "convert", str(DE20), "--to", "json")
    assert done.returncode == 0, done.stderr
    out = orjson.loads(done.stdout)
    assert out["version"] == "2.0" and out["distribution_status"] == "Exercise"
    assert out["explicit_address"] == [
        {"scheme": "urn:liandong:jurisdiction", "values": ["320509"]}
    ]
    drill, report = out["contents"]
    incident = drill["embedded"][0]["incident"]
    assert incident["identifier"] == "QP-EX-2026-0915-001" and incident["status"] == "Exercise"
    assert report["embedded"][0]["xml"].startswith('<report xmlns="urn:liandong:drill-report"')
    same = _cli("cap", "convert", str(CAP), "--to", "json")
    alone = orjson.loads(same.stdout)
    spill = orjson.loads(_cli("cap", "convert", str(DE10), "--to", "json").stdout)
    assert spill["contents"][0]["embedded"][0]["incident"]["sender"] == alone["sender"]


def test_cap_convert_refuses_what_it_cannot_do_clearly() -> None:
    done = _cli("cap", "convert", str(DE10), "--to", "cap")
    assert done.returncode == 2 and "converts --to json" in done.stderr
    done = _cli("cap", "convert", str(MISMATCH), "--to", "json")
    assert done.returncode == 2 and "disagrees with the envelope" in done.stderr
