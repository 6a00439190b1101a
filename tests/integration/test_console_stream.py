"""The console's live stream (``GET /api/v1/stream``) on a real hub process (embedded mode):
who may connect, and who sees what, as server-sent events arrive."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.factories import cap
from tests.integration.hubproc import HubProcess, add_adapter
from tests.integration.stream_client import add_user, read_events

QINGPU, WUJIANG, JIASHAN, KUNSHAN = "310118", "320509", "330421", "320583"
PASSWORD = "stream-test-pw-1"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, str]]:
    data = tmp_path_factory.mktemp("stream") / "data"
    token = add_adapter(data, QINGPU, "qingpu")
    add_user(data, "officer.wujiang", "officer", WUJIANG, PASSWORD)
    add_user(data, "officer.kunshan", "officer", KUNSHAN, PASSWORD)
    add_user(data, "coord", "coordinator", None, PASSWORD)
    with HubProcess(data) as hub:
        hub.start()
        yield hub, token


def signed_in(hub: HubProcess, username: str) -> httpx.Client:
    client = httpx.Client(base_url=hub.url, timeout=10.0)
    answer = client.post("/api/v1/session", json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return client


def test_stream_needs_a_user_or_an_adapter(running: tuple[HubProcess, str]) -> None:
    hub, _ = running
    answer = httpx.get(f"{hub.url}/api/v1/stream", timeout=5.0)
    assert answer.status_code == 401
    assert "sign in" in answer.json()["detail"]


def test_each_viewer_sees_the_incident_and_only_its_own_tasks(
    running: tuple[HubProcess, str],
) -> None:
    hub, token = running
    viewers = {
        "wujiang": signed_in(hub, "officer.wujiang"),
        "kunshan": signed_in(hub, "officer.kunshan"),
        "coord": signed_in(hub, "coord"),
    }
    found: dict[str, queue.Queue[dict[str, Any]]] = {name: queue.Queue() for name in viewers}
    ready = threading.Barrier(len(viewers) + 1, timeout=10)
    threads = [
        threading.Thread(
            target=read_events, args=(c, found[name], ready), daemon=True, name=f"sse-{name}"
        )
        for name, c in viewers.items()
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    body = orjson.dumps(cap("live-1"))
    answer = httpx.post(
        f"{hub.url}/api/v1/incidents",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 202, answer.text

    def collect(name: str, want: int) -> list[dict[str, Any]]:
        got = []
        while len(got) < want:
            got.append(found[name].get(timeout=10))
        return got

    # The Jinze spill asks Wujiang, Jiashan and Kunshan: the coordinator sees all three tasks.
    coord = collect("coord", 4)
    assert coord[0]["type"] == "incident.reported"
    assert coord[0]["data"]["incident"]["identifier"] == "live-1"
    assert sorted(e["data"]["task"]["target"] for e in coord[1:]) == sorted(
        [WUJIANG, JIASHAN, KUNSHAN]
    )
    for name, code in (("wujiang", WUJIANG), ("kunshan", KUNSHAN)):
        seen = collect(name, 2)
        assert [e["type"] for e in seen] == ["incident.reported", "task.issued"]
        assert seen[1]["data"]["task"]["target"] == code
        assert seen[0]["lane"] == "actual"
    # Nothing else arrives for an officer: Jiashan's task is not theirs.
    with pytest.raises(queue.Empty):
        found["wujiang"].get(timeout=1.0)


def test_an_adapter_token_may_follow_the_stream(running: tuple[HubProcess, str]) -> None:
    hub, token = running
    client = httpx.Client(
        base_url=hub.url, timeout=10.0, headers={"Authorization": f"Bearer {token}"}
    )
    got: queue.Queue[dict[str, Any]] = queue.Queue()
    ready = threading.Barrier(2, timeout=10)
    threading.Thread(target=read_events, args=(client, got, ready), daemon=True).start()
    ready.wait()
    exercise = cap("live-ex-1", status="Exercise")
    answer = client.post("/api/v1/incidents", json=exercise)
    assert answer.status_code == 202, answer.text
    first = got.get(timeout=10)
    assert first["type"] == "incident.reported"
    assert first["lane"] == "exercise"
    assert first["data"]["incident"]["status"] == "Exercise"


def test_console_assets_are_served_by_the_hub(running: tuple[HubProcess, str]) -> None:
    hub, _ = running
    page = httpx.get(f"{hub.url}/", timeout=5.0)
    assert page.status_code == 200 and "联动" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "core.js", "app.css", "i18n/zh-CN.json", "i18n/en.json"):
        answer = httpx.get(f"{hub.url}/console/{asset}", timeout=5.0)
        assert answer.status_code == 200, asset
    missing = httpx.get(f"{hub.url}/console/../settings.py", timeout=5.0)
    assert missing.status_code == 404
    assert not Path(str(hub.data_dir)).joinpath("console").exists()
