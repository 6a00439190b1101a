"""The same incident stream through the same playbooks gives byte-identical task events.

``tests/fixtures/streams/playbooks-day.jsonl`` was recorded from an embedded hub (the incidents of
every ``playbooks/*.cases.yaml``, Updates threaded by the intake, exported with ``liandong log
export --topic liandong.incidents.v1``). It is replayed through the engine's planning step, the
one the runner and its worker processes call, twice in this process with freshly loaded region
and playbooks, and in other processes under other hash seeds (set and dict order must not leak
into what is emitted).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import orjson

from hub.engine.planning import Planned, prepare
from hub.engine.playbook import load_playbooks
from hub.errors import InvalidInput
from hub.model.envelope import Lane
from hub.region import Region
from hub.region.agreements import default_agreements_path

REPO = Path(__file__).resolve().parents[2]
STREAM = REPO / "tests" / "fixtures" / "streams" / "playbooks-day.jsonl"


def replay() -> list[bytes]:
    """Every task event, task row, approval request and failure the stream gives, in order,
    as bytes."""
    region = Region.from_files(
        REPO / "hub" / "region" / "data" / "region.json", default_agreements_path()
    )
    playbooks = load_playbooks(REPO / "playbooks", region)
    out: list[bytes] = []
    for line in STREAM.read_bytes().splitlines():
        record = orjson.loads(line)
        value = orjson.dumps(record["event"])
        planned = prepare(value, Lane.ACTUAL, playbooks, region)
        if isinstance(planned, InvalidInput) or planned is None:
            out.append(b"-")
            continue
        assert isinstance(planned, Planned)
        for row in planned.rows:
            out.extend((row.event, row.body, repr(row.ladder).encode()))
        for ask in planned.approvals:
            out.extend((ask.event, ask.tasks_json))
        out.extend(f"{p}: {r}".encode() for p, r in planned.failures)
    return out


def digest() -> str:
    return hashlib.sha256(b"\n".join(replay())).hexdigest()


def test_replaying_the_recorded_stream_twice_gives_byte_identical_task_events() -> None:
    first = replay()
    second = replay()
    assert first == second
    events = [orjson.loads(b) for b in first if b'"specversion"' in b]
    assert len(events) >= 100  # the stream really exercises the playbooks
    assert {e["type"] for e in events} == {"task.issued", "approval.requested"}
    issued = [e for e in events if e["type"] == "task.issued"]
    assert len({e["data"]["task"]["why"]["playbook"] for e in issued}) == 9
    asked = [e["data"] for e in events if e["type"] == "approval.requested"]
    assert {a["playbook"] for a in asked} == {"infectious-disease-joint-control"}
    assert all(a["tasks"] for a in asked)


def test_other_processes_and_hash_seeds_give_the_same_bytes() -> None:
    expected = digest()
    for seed in ("1", "4242"):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from tests.unit.test_determinism import digest; print(digest())",
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert done.stdout.strip() == expected, f"seed {seed}"
