"""In-process adapters: the hub's side (ids, loopback URL, the entry point) and the adapter
supervisor restarting a real adapter that crashes (its port is taken) with doubling backoff,
while the adapter beside it keeps running."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from adapters.framework.discovery import Found, find
from adapters.framework.inprocess import Backoff, Supervisor, in_process
from adapters.framework.manifest import Manifest
from adapters.framework.runner import AdapterRunner, HubAccess
from hub.errors import HubError, InvalidInput
from hub.inprocess import ADAPTERS_ENV, ENTRY_POINT_GROUP, adapter_ids, load_adapters, loopback_url
from tests.integration.hubproc import free_port

SHANGHAI = Path(__file__).resolve().parents[2] / "adapters" / "cities" / "shanghai"


def test_adapter_ids_come_from_the_option_else_the_setting() -> None:
    env = {ADAPTERS_ENV: "suzhou, nantong,,suzhou"}
    assert adapter_ids(None, env) == ["suzhou", "nantong"]
    assert adapter_ids("jiaxing", env) == ["jiaxing"]
    assert adapter_ids("", env) == []  # --adapters "" runs none, whatever the setting says
    assert adapter_ids(None, {}) == []
    with pytest.raises(InvalidInput, match=r"LIANDONG_ADAPTERS: 'Su Zhou' is not an adapter id"):
        adapter_ids(None, {ADAPTERS_ENV: "Su Zhou"})
    with pytest.raises(InvalidInput, match=r"--adapters: 'a/b' is not an adapter id"):
        adapter_ids("a/b", {})


def test_the_loopback_url_reaches_a_wildcard_listener() -> None:
    assert loopback_url("127.0.0.1", 8000) == "http://127.0.0.1:8000"
    assert loopback_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert loopback_url("::", 8000) == "http://[::1]:8000"
    assert loopback_url("fd00::5", 80) == "http://[fd00::5]:80"
    assert loopback_url("hub.internal", 8000) == "http://hub.internal:8000"


def test_the_entry_point_is_registered_and_loads_the_supervisor() -> None:
    names = {e.name: e.value for e in entry_points(group=ENTRY_POINT_GROUP)}
    assert names.get("adapters") == "adapters.framework.inprocess:in_process"
    assert load_adapters([], "http://127.0.0.1:8000") is None


def test_every_problem_is_named_before_anything_starts() -> None:
    env = {"SUZHOU_LINK_MQTT_PASSWORD": "x"}
    with pytest.raises(HubError) as caught:
        in_process(["suzhou", "nowhere"], "http://127.0.0.1:8000", env=env)
    message = str(caught.value)
    assert "adapter 'suzhou': environment variable SUZHOU_HUB_TOKEN is not set" in message
    assert "adapter 'nowhere': no adapter 'nowhere'" in message
    supervisor = in_process(
        ["suzhou", "shanghai"],
        "http://127.0.0.1:8000",
        env={
            **env,
            "SUZHOU_HUB_TOKEN": "t",
            "SHANGHAI_HUB_TOKEN": "t",
            "SHANGHAI_CITY_TASKS_TOKEN": "c",
        },
    )
    assert list(supervisor.ids) == ["suzhou", "shanghai"]
    with pytest.raises(InvalidInput, match="initial_s"):
        Backoff(initial_s=0)


def listening_only(adapter_id: str, port: int) -> Found:
    """The Shanghai adapter (CAP over HTTP) listening on ``port``, delivering nowhere."""
    found = find("shanghai")
    assert found.manifest is not None
    data: dict[str, Any] = found.manifest.model_dump(mode="json", exclude_none=True)
    data["id"] = adapter_id
    data["transport"]["listen"]["port"] = port
    del data["transport"]["deliver"]
    return Found(SHANGHAI, Manifest.model_validate(data))


def factory(found: Found) -> Callable[[], AdapterRunner]:
    return lambda: AdapterRunner(found, HubAccess("http://127.0.0.1:9", "token"))


async def until(check: Callable[[], Any], what: str, timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 - polling what the supervisor exposes
            await asyncio.sleep(0.01)
    assert check(), what


async def test_a_crashing_adapter_is_restarted_with_backoff_and_the_other_keeps_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.inprocess")
    port = free_port()
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", port))
    taken.listen()
    supervisor = Supervisor(
        {
            "crashing": factory(listening_only("crashing", port)),
            "steady": factory(listening_only("steady", free_port())),
        },
        Backoff(initial_s=0.01, max_s=0.05, healthy_s=60.0),
    )
    running = asyncio.create_task(supervisor.run())
    try:
        await until(lambda: supervisor.restarts["crashing"] >= 5, "five restarts")
        steady = supervisor.runners["steady"]
        assert steady.ready.is_set() and supervisor.restarts["steady"] == 0
        assert f"cannot listen on 127.0.0.1:{port}" in supervisor.last_error["crashing"]
        delays = [
            float(m.group(1))
            for r in caplog.records
            if (m := re.search(r"crashing crashed: .* restart \d+ in ([\d.]+) s", r.getMessage()))
        ]
        assert delays[:5] == [0.01, 0.02, 0.04, 0.05, 0.05]  # doubling, up to max_s

        taken.close()  # the port is free again: the next restart comes up
        await until(
            lambda: supervisor.runners["crashing"].ready.is_set(), "the crashed adapter back"
        )
        assert supervisor.runners["steady"] is steady  # never restarted
        assert running.done() is False
    finally:
        taken.close()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    stopped = [r.getMessage() for r in caplog.records if " stopped: " in r.getMessage()]
    assert len(stopped) == 2
    assert not supervisor.runners["steady"].ready.is_set()  # closed on the way out
