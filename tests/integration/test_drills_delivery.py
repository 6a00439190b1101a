"""Isolation at the city's door: a hub in a subprocess issues live and exercise tasks to Wujiang;
an adapter whose tasks are ``live_only`` never delivers an exercise task, and an adapter that
takes both marks every exercise task 演练 / EXERCISE (and CAP status Exercise from the lane)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from adapters.framework.cap_tasks import task_to_cap
from adapters.framework.task_feed import Delivery, TaskFeed
from adapters.links.hub_api import HubApi
from tests.factories import cap
from tests.integration.hubproc import HubProcess, add_adapters

QINGPU, WUJIANG = "310118", "320509"


class CityDesk:
    """The city's side of the delivery: keeps what it was sent."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    async def deliver(self, task: dict[str, Any]) -> Delivery:
        self.got.append(task)
        return Delivery(True, 200, "ok", 1)


def _tasks(url: str, token: str) -> list[dict[str, Any]]:
    res = httpx.get(
        f"{url}/api/v1/tasks", params={"target": WUJIANG},
        headers={"Authorization": f"Bearer {token}"}, timeout=10,
    )  # fmt: skip
    assert res.status_code == 200, res.text
    found: list[dict[str, Any]] = res.json()["tasks"]
    return found


async def _sync(url: str, token: str, live_only: bool) -> tuple[CityDesk, TaskFeed]:
    desk, api = CityDesk(), HubApi(url)
    try:
        feed = TaskFeed(api, token, WUJIANG, desk, live_only=live_only)
        await feed.sync()
    finally:
        await api.aclose()
    return desk, feed


def test_live_only_cities_get_no_exercise_task_and_others_get_them_marked(
    tmp_path: Path,
) -> None:
    with HubProcess(tmp_path / "data") as hub:
        tokens = add_adapters(hub.data_dir, [(QINGPU, "qingpu"), (WUJIANG, "wujiang")],
                              via_cli=False)  # fmt: skip
        hub.start()
        qingpu = {"Authorization": f"Bearer {tokens['qingpu']}"}
        for body in (cap("live-spill"), cap("drill-spill", status="Exercise")):
            res = httpx.post(f"{hub.url}/api/v1/incidents", json=body, headers=qingpu, timeout=10)
            assert res.status_code == 202, res.text
        deadline = time.monotonic() + 30
        lanes: set[str] = set()
        while lanes != {"actual", "exercise"} and time.monotonic() < deadline:
            time.sleep(0.1)
            lanes = {t["lane"] for t in _tasks(hub.url, tokens["wujiang"])}
        assert lanes == {"actual", "exercise"}
        listed = _tasks(hub.url, tokens["wujiang"])
        exercise = [t for t in listed if t["lane"] == "exercise"]

        desk, feed = asyncio.run(_sync(hub.url, tokens["wujiang"], live_only=True))
        assert desk.got and {t["lane"] for t in desk.got} == {"actual"}
        assert feed.stats["exercise_refused"] == len(exercise)
        assert not any("演练" in t["action_zh"] for t in desk.got)

        desk, feed = asyncio.run(_sync(hub.url, tokens["wujiang"], live_only=False))
        marked = [t for t in desk.got if t["lane"] == "exercise"]
        assert len(marked) == len(exercise) and feed.stats["exercise_refused"] == 0
        for task in marked:
            assert task["action_zh"].startswith("【演练】")
            assert task["action_en"].startswith("[EXERCISE] ")
            assert task_to_cap(task).status.value == "Exercise"
