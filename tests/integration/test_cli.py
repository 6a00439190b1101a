"""The command line as a newcomer and an integrator use it, in real subprocesses."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

LIANDONG = [sys.executable, "-c", "from hub.cli import main; main()"]


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LIANDONG, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_adapters_add_prints_the_token_last_and_refuses_unknown_codes(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    done = _cli("adapters", "add", "--jurisdiction", "320509", "--name", "wujiang", "--data", data)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "吴江区" in lines[0] and lines[-1].startswith("ld_")
    again = _cli("adapters", "add", "--jurisdiction", "320509", "--name", "wujiang", "--data", data)
    assert again.returncode == 2 and "already exists" in again.stderr
    unknown = _cli("adapters", "add", "--jurisdiction", "123456", "--name", "x", "--data", data)
    assert unknown.returncode == 2 and "123456" in unknown.stderr
    listed = _cli("adapters", "list", "--data", data)
    assert listed.stdout.split() == ["wujiang", "320509"]


def test_unknown_backends_are_refused_clearly(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "LIANDONG_BUS": "amqp://127.0.0.1:5672"}
    done = subprocess.run(
        [*LIANDONG, "run", "--no-demo", "--data", str(tmp_path), "--port", str(_free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 2
    assert "LIANDONG_BUS" in done.stderr and "kafka://" in done.stderr


def test_run_demo_plays_and_neighbours_acknowledge(tmp_path: Path) -> None:
    """The README's main job: first run seeds the demo; Wujiang and Jiashan acknowledge."""
    data, port = tmp_path / "data", _free_port()
    proc = subprocess.Popen(
        [*LIANDONG, "run", "--data", str(data), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        tokens = data / "demo-adapters.json"
        deadline = time.monotonic() + 60
        acknowledged: set[str] = set()
        while time.monotonic() < deadline and not {"320509", "330421"} <= acknowledged:
            time.sleep(0.5)
            if proc.poll() is not None or not tokens.exists():
                continue
            token = next(iter(orjson.loads(tokens.read_bytes()).values()))["token"]
            try:
                for target in ("320509", "330421"):
                    res = httpx.get(
                        f"http://127.0.0.1:{port}/api/v1/tasks",
                        params={"target": target, "state": "acknowledged"},
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=5,
                    )
                    if res.status_code == 200 and res.json()["tasks"]:
                        acknowledged.add(target)
            except httpx.HTTPError:
                continue
        assert {"320509", "330421"} <= acknowledged, "demo neighbours did not acknowledge in 60 s"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {"status": "ok"}
    finally:
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert f"http://127.0.0.1:{port}/" in output
    assert "acknowledged" in output
    # ...and it tells how to sign in to the console (demo officers and a coordinator).
    assert "officer.suzhou" in output and "coordinator" in output and "liandong-demo" in output
    # The demo's depots and stock were loaded into the registry on the first run.
    balances = subprocess.run(
        [*LIANDONG, "registry", "balances", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert balances.returncode == 0, balances.stderr
    assert "sandbag" in balances.stdout and len(balances.stdout.splitlines()) > 100

    exported = _cli("log", "export", "--data", str(data))
    lines = [orjson.loads(line) for line in exported.stdout.splitlines()]
    types = {line["event"]["type"] for line in lines}
    assert {"incident.reported", "task.issued", "task.acknowledged"} <= types
    offsets = [line["offset"] for line in lines]
    assert offsets == sorted(offsets)


def test_cap_check_and_convert(tmp_path: Path) -> None:
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "cap"
    good = sorted(fixtures.glob("*.xml"))[0]
    bad = tmp_path / "bad.xml"
    bad.write_bytes(
        good.read_bytes().replace(b"<sent>", b"<sentx>").replace(b"</sent>", b"</sentx>")
    )
    done = _cli("cap", "check", str(good), str(bad))
    assert done.returncode == 1
    lines = done.stdout.strip().splitlines()
    assert lines[0] == f"{good}: OK"
    assert lines[1].startswith(f"{bad}: ") and "sent" in lines[1]
    as_json = _cli("cap", "convert", str(good), "--to", "json")
    assert as_json.returncode == 0 and orjson.loads(as_json.stdout)["identifier"]
    json_file = tmp_path / "incident.json"
    json_file.write_text(as_json.stdout)
    back = _cli("cap", "convert", str(json_file), "--to", "cap")
    assert back.returncode == 0 and back.stdout.startswith("<?xml")
    assert _cli("cap", "check", str(json_file)).returncode == 0
