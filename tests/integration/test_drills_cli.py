"""``liandong drills``: a recording exported from a real embedded hub, trimmed, anonymised."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
from typer.testing import CliRunner

from hub.bus import topics
from hub.cli import app
from hub.drills.recording import read
from hub.model.envelope import format_time
from hub.runtime import Hub
from hub.settings import Settings
from hub.store.db import connect_direct
from tests.factories import cap, wait_for

REPO = Path(__file__).resolve().parents[2]
QINGPU = "310118"
runner = CliRunner()


def _drills(*args: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["drills", *args],
        env={"LIANDONG_DATABASE": None, "LIANDONG_BUS": None, "LIANDONG_DATA": None},
    )
    return result.exit_code, result.output


def _log_rows(settings: Settings) -> list[tuple[int, str, int]]:
    conn = connect_direct(settings.database_path)
    try:
        rows = conn.execute('SELECT "offset", topic, ts_ms FROM log ORDER BY "offset"').fetchall()
        return [(int(o), str(t), int(ts)) for o, t, ts in rows]
    finally:
        conn.close()


async def test_export_trim_anonymise_from_a_running_hub(
    client: httpx.AsyncClient,
    token: Callable[[str], str],
    hub: Hub,
    settings: Settings,
    tmp_path: Path,
) -> None:
    before = time.time_ns() // 1_000_000 - 1
    qingpu = {"Authorization": f"Bearer {token(QINGPU)}"}
    drill = cap(
        "drill-1",
        status="Exercise",
        note="值班员王建国 13900000317",
        circle="31.034,120.902 1.5",
    )
    for body in (drill, cap("live-1")):
        res = await client.post("/api/v1/incidents", content=orjson.dumps(body), headers=qingpu)
        assert res.status_code == 202, res.text

    async def tasks_issued() -> bool:
        found = {t for _, t, _ in _log_rows(settings)}
        return {"exercise." + topics.TASKS, topics.TASKS} <= found

    await wait_for(tasks_issued)
    rows = _log_rows(settings)
    after = max(ts for _, _, ts in rows) + 1
    out = tmp_path / "rec.jsonl"
    data = str(settings.data)

    code, output = _drills(
        "export",
        "--from",
        format_time(before),
        "--to",
        format_time(after),
        "--out",
        str(out),
        "--data",
        data,
    )
    assert code == 0, output
    recording = read(out)
    assert [(r.offset, r.topic, r.appended_ms) for r in recording] == rows
    first = orjson.loads(out.read_bytes().splitlines()[0])
    assert set(first) == {"offset", "topic", "key", "appended_ms", "envelope"}
    assert first["envelope"]["type"] == "incident.reported"

    # An empty window, a window in another time zone's notation, a time without an offset.
    code, _ = _drills(
        "export",
        "--from",
        "2020-01-01T00:00:00+08:00",
        "--to",
        "2020-01-02T00:00:00+08:00",
        "--out",
        str(tmp_path / "empty.jsonl"),
        "--data",
        data,
    )
    assert code == 0 and (tmp_path / "empty.jsonl").read_bytes() == b""
    code, output = _drills(
        "export",
        "--from",
        "2026-01-01T00:00:00",
        "--to",
        format_time(after),
        "--out",
        str(tmp_path / "x.jsonl"),
        "--data",
        data,
    )
    assert code == 2 and "no UTC offset" in output

    exercise = tmp_path / "exercise.jsonl"
    code, output = _drills(
        "trim",
        str(out),
        str(exercise),
        "--topic",
        "exercise." + topics.INCIDENTS,
        "--topic",
        "exercise." + topics.TASKS,
    )
    assert code == 0, output
    trimmed = read(exercise)
    assert trimmed and all(r.envelope["status"] == "exercise" for r in trimmed)
    assert [r.offset for r in trimmed] == [
        o for o, t, _ in rows if t in ("exercise." + topics.INCIDENTS, "exercise." + topics.TASKS)
    ]

    anonymous = tmp_path / "anon.jsonl"
    code, output = _drills("anonymise", str(exercise), str(anonymous))
    assert code == 0, output
    text = anonymous.read_text(encoding="utf-8")
    assert "王建国" not in text and "13900000317" not in text and "金泽镇" not in text
    assert "31.034,120.902 1.5" in text
    assert [r.envelope["id"] for r in read(anonymous)] == [r.envelope["id"] for r in trimmed]
    tasks = [r for r in read(anonymous) if r.envelope["type"] == "task.issued"]
    assert tasks and all(t.envelope["data"]["task"]["action_zh"].startswith("[") for t in tasks)


def test_check_reports_each_file(tmp_path: Path) -> None:
    shipped = sorted(str(p) for p in (REPO / "drills").glob("*.yaml"))
    code, output = _drills("check", *shipped)
    assert code == 0, output
    assert output.count(": OK") == len(shipped) >= 2
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        'id: b\ntitle: {zh: 坏, en: bad}\nstart: "2026-06-18T09:00:00+08:00"\ninjects:\n'
        '  - id: x\n    at: PT1M\n    jurisdiction: "320509"\n    update: {of: nothing}\n',
        encoding="utf-8",
    )
    code, output = _drills("check", shipped[0], str(broken))
    assert code == 1
    assert f"{shipped[0]}: OK" in output and f"{broken}:8:" in output


def test_run_plays_a_scenario_and_report_reads_it_back(tmp_path: Path) -> None:
    scenario = str(REPO / "drills" / "taipu-pollution-chain.yaml")
    out, page = tmp_path / "drill", tmp_path / "report.html"
    code, output = _drills(
        "run", scenario, "--registry", "demo", "--out", str(out), "--html", str(page),
        "--data", str(tmp_path / "live"),
    )  # fmt: skip
    assert code == 0, output
    result = orjson.loads(output)
    assert result["run"]["state"] == "finished" and result["run"]["speed"] == "max"
    assert result["run"]["drill"] == "taipu-pollution-chain" and result["run"]["digest"]
    report = result["report"]
    assert report["incidents"] == 2 and report["tasks"] > 0 and report["escalations"] > 0
    assert "<svg" in page.read_text(encoding="utf-8")
    code, again = _drills("report", str(out))
    assert code == 0 and orjson.loads(again) == report
    code, output = _drills("run", scenario, "--out", str(out))
    assert code == 2 and "fresh" in output  # a drill never reuses a database
    code, output = _drills("run", scenario, "--speed", "0", "--out", str(tmp_path / "x"))
    assert code == 2 and "--speed '0'" in output


def test_compare_reports_what_other_playbooks_change(tmp_path: Path) -> None:
    fewer = tmp_path / "playbooks"
    shutil.copytree(REPO / "playbooks", fewer)
    for path in fewer.glob("cross-border-water-pollution*"):
        path.unlink()
    recorded = str(REPO / "tests" / "fixtures" / "recordings" / "day-small.jsonl")
    code, output = _drills(
        "compare", recorded, "--playbooks", str(REPO / "playbooks"), "--playbooks", str(fewer),
        "--registry", "demo",
    )  # fmt: skip
    assert code == 0, output
    result = orjson.loads(output)
    diff = result["differences"]
    assert diff["tasks"]["a"] > diff["tasks"]["b"]
    per = diff["tasks_per_jurisdiction"]
    assert per and all((d["b"] or 0) < (d["a"] or 0) for d in per.values())
    same = result["a"]["outcomes"]["resources_requested"]
    assert same == result["b"]["outcomes"]["resources_requested"] and same
    code, output = _drills("compare", recorded, "--playbooks", str(REPO / "playbooks"))
    assert code == 2 and "two --playbooks" in output
