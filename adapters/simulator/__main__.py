"""``python -m adapters.simulator``: play a scenario against a running hub over its HTTP API."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson

from adapters.simulator.scenario import Inject, Responder, Scenario, load_scenario

CST = timezone(timedelta(hours=8))


def _say(text: str) -> None:
    print(f"[simulator {datetime.now(CST):%H:%M:%S}] {text}", flush=True)


class City:
    """One simulated command centre: its token, its incidents and its answers to tasks."""

    def __init__(
        self, code: str, name: str, token: str, client: httpx.AsyncClient, responder: Responder
    ) -> None:
        self.code = code
        self.name = name
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        self.responder = responder
        self.answered: set[str] = set()

    async def report(self, message: dict[str, Any]) -> httpx.Response:
        return await self.client.post(
            "/api/v1/incidents", content=orjson.dumps(message), headers=self.headers
        )

    async def answer_tasks(self) -> int:
        """Acknowledge this city's new tasks after its delay; returns how many it acknowledged."""
        if self.responder.silent:
            return 0
        res = await self.client.get(
            "/api/v1/tasks", params={"target": self.code, "state": "issued"}, headers=self.headers
        )
        res.raise_for_status()
        acked = 0
        for task in res.json()["tasks"]:
            if task["id"] in self.answered:
                continue
            await asyncio.sleep(self.responder.ack_after_s)
            done = await self.client.post(
                f"/api/v1/tasks/{task['id']}/acknowledge", headers=self.headers
            )
            if done.status_code == 200:
                self.answered.add(task["id"])
                acked += 1
                _say(f"{self.name} {self.code} 确认任务 acknowledged: {task['action_zh']}")
        return acked


def _message(inject: Inject, stamp: str, sent: str) -> dict[str, Any]:
    message = dict(inject.message)
    message["identifier"] = f"{inject.name}-{stamp}"
    message["sender"] = inject.sender
    message["sent"] = sent
    if inject.references:
        message["references"] = " ".join(
            f"{inject.sender},{ref}-{stamp},{sent}" for ref in inject.references
        )
    return message


async def play(hub: str, adapters_file: Path, scenario: Scenario, once: bool) -> int:
    tokens = orjson.loads(await asyncio.to_thread(adapters_file.read_bytes))
    stamp = datetime.now(CST).strftime("%Y%m%d%H%M%S")
    async with httpx.AsyncClient(base_url=hub, timeout=10.0) as client:
        cities = {
            spec["jurisdiction"]: City(
                spec["jurisdiction"],
                spec.get("name_zh", ""),
                spec["token"],
                client,
                scenario.responders.get(spec["jurisdiction"], Responder()),
            )
            for spec in tokens.values()
        }
        _say(f"scenario: {scenario.title}")
        start = time.monotonic()
        responders = [asyncio.create_task(_respond(city)) for city in cities.values()]
        for inject in scenario.injects:
            await asyncio.sleep(max(0.0, start + inject.at_s - time.monotonic()))
            city = cities.get(inject.sender)
            if city is None:
                _say(f"no adapter for {inject.sender}; inject {inject.name} skipped")
                continue
            sent = datetime.now(CST).replace(microsecond=0).isoformat()
            res = await city.report(_message(inject, stamp, sent))
            info = inject.message.get("info", [{}])[0]
            _say(
                f"{city.name} {city.code} 报送 reported {inject.message.get('msgType')}: "
                f"{info.get('event', '')} → HTTP {res.status_code}"
            )
        if once:
            await asyncio.sleep(
                max(r.ack_after_s for r in scenario.responders.values()) + 3
                if scenario.responders
                else 3
            )
            for task in responders:
                task.cancel()
            return 0
        await asyncio.gather(*responders)
    return 0


async def _respond(city: City) -> None:
    while True:
        try:
            await city.answer_tasks()
        except httpx.HTTPError as exc:
            _say(f"{city.name} {city.code}: hub not reachable ({exc.__class__.__name__}); retrying")
        await asyncio.sleep(1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description="Simulated city command centres for Liandong.")
    parser.add_argument("--hub", required=True, help="hub base URL, e.g. http://127.0.0.1:8000/")
    parser.add_argument(
        "--adapters", required=True, type=Path, help="JSON file: adapter name → jurisdiction, token"
    )
    parser.add_argument("--scenario", required=True, type=Path, help="scenario YAML")
    parser.add_argument(
        "--once", action="store_true", help="stop after the last inject has been answered"
    )
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    loop = asyncio.new_event_loop()
    main_task = loop.create_task(play(args.hub, args.adapters, scenario, args.once))
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, main_task.cancel)
    try:
        return loop.run_until_complete(main_task)
    except (asyncio.CancelledError, KeyboardInterrupt):
        return 0
    finally:
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
