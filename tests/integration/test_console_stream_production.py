"""The live stream in production mode (PostgreSQL + Kafka, two hub instances): a console
connected to one instance sees what was reported through the other — each instance's reader
follows the shared outbox, not only its own events."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.factories import cap
from tests.integration.hubproc import HubProcesses, add_adapter
from tests.integration.stream_client import add_user, read_events
from tests.integration.test_production import production_env

QINGPU = "310118"
PASSWORD = "stream-prod-pw-1"


def test_each_instance_streams_every_instance_s_events(
    tmp_path: Path, tansu_broker: Any, postgres_url: str
) -> None:
    env = production_env(tansu_broker, postgres_url)
    with HubProcesses(tmp_path) as hubs:
        a, b = hubs.new("a", env=env), hubs.new("b", env=env)
        token = add_adapter(a.data_dir, QINGPU, "qingpu", env=env)
        add_user(a.data_dir, "coord", "coordinator", None, PASSWORD, env=env)
        a.start(timeout_s=90.0)
        b.start(timeout_s=90.0)
        found: dict[str, queue.Queue[dict[str, Any]]] = {"a": queue.Queue(), "b": queue.Queue()}
        ready = threading.Barrier(3, timeout=30)
        for name, hub in (("a", a), ("b", b)):
            client = httpx.Client(base_url=hub.url, timeout=10.0)
            signed = client.post(
                "/api/v1/session", json={"username": "coord", "password": PASSWORD}
            )
            assert signed.status_code == 200, signed.text
            threading.Thread(
                target=read_events, args=(client, found[name], ready), daemon=True
            ).start()
        ready.wait()
        for n, hub in enumerate((a, b)):
            answer = httpx.post(
                f"{hub.url}/api/v1/incidents",
                content=orjson.dumps(cap(f"prod-live-{n}")),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                timeout=10.0,
            )
            assert answer.status_code == 202, answer.text
        for name in ("a", "b"):
            reported: set[str] = set()
            tasks = 0
            while len(reported) < 2 or tasks < 6:
                event = found[name].get(timeout=30)
                if event["type"] == "incident.reported":
                    reported.add(event["data"]["incident"]["identifier"])
                elif event["type"] == "task.issued":
                    tasks += 1
            assert reported == {"prod-live-0", "prod-live-1"}, name
