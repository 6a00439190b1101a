"""Adapters inside the embedded hub's process, end to end: a real ``liandong run`` (subprocess)
with ``LIANDONG_ADAPTERS`` naming two adapters found through ``LIANDONG_ADAPTER_PATH``:

- ``jiashan-inproc``: Jiashan's Chinese-named JSON dialect over HTTP (the city posts to the
  adapter's door; the adapter posts tasks to the city's endpoint);
- ``suzhou-inproc``: Suzhou's pinyin JSON dialect over MQTT, on Debian's mosquitto running the
  deployment's configuration.

The simulated cities (``adapters/simulator``) speak their own dialects over their own
transports; nothing in this process is an adapter. Jiashan reports a spill on the Hongqitang
(the hub tasks Wujiang, a district of Suzhou), Suzhou one on the Taipu River at Pingwang (the
hub tasks Jiashan): each city receives its task and acknowledges it, and the hub records it.

The Jiashan adapter's port is held by this test when the hub starts, so the adapter crashes
and is restarted with backoff while the hub keeps serving; stopping the hub stops both
adapters cleanly. No timings are asserted: every wait is bounded and names what it waited for.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from ruamel.yaml import YAML

from adapters.codecs.dialect import Dialect
from adapters.framework.discovery import find
from adapters.framework.manifest import Manifest
from adapters.simulator.cities import SimulatedCity, now_cst
from adapters.simulator.city_mqtt import MqttCity
from adapters.simulator.region_scenario import Answers, CityPlay, Fixed
from adapters.simulator.speech import speech_for
from adapters.simulator.wiring import MqttPlace, Wired, wire
from hub.model.incident import Incident
from tests.brokers.mosquitto import LINK_USER, MosquittoFactory, mosquitto, password
from tests.integration.hubproc import HubProcess, add_adapters, hub_env

__all__ = ["mosquitto"]  # the fixture, imported for this module

REPO = Path(__file__).resolve().parents[2]
CITIES = REPO / "adapters" / "cities"
DIALECTS = REPO / "adapters" / "codecs" / "examples"
JIASHAN, SUZHOU, WUJIANG = "330421", "320500", "320509"
IDS = {JIASHAN: "jiashan-inproc", SUZHOU: "suzhou-inproc"}
TOKEN_ENV = {JIASHAN: "JIASHAN_INPROC_HUB_TOKEN", SUZHOU: "SUZHOU_INPROC_HUB_TOKEN"}
QUICK = Answers(delay=Fixed(kind="fixed", s=0.2))
WAIT_S = 45.0


def write_manifest(folder: Path, manifest: Manifest) -> None:
    yaml = YAML(typ="safe", pure=True)
    with (folder / "adapter.yaml").open("w", encoding="utf-8") as out:
        yaml.dump(manifest.model_dump(mode="json", exclude_none=True), out)


def jiashan_folder(root: Path) -> Path:
    """Jiashan's adapter: the Shanghai HTTP template with Jiashan's example JSON dialect."""
    folder = root / IDS[JIASHAN]
    folder.mkdir(parents=True)
    shutil.copy(DIALECTS / "jiashan.yaml", folder / "mapping.yaml")
    template = find("shanghai").manifest
    assert template is not None
    deliver = template.transport.deliver  # type: ignore[union-attr]
    assert deliver is not None
    retry = deliver.retry.model_copy(update={"initial_s": 0.05, "max_s": 0.2})
    manifest = Manifest.model_validate(
        {
            **template.model_dump(mode="json", exclude_none=True),
            "id": IDS[JIASHAN],
            "name": "嘉善县 test adapter (JSON over HTTP)",
            "jurisdiction": JIASHAN,
            "codec": {"kind": "dialect", "mapping": "mapping.yaml"},
            "hub": {"url": "http://127.0.0.1:9", "token_env": TOKEN_ENV[JIASHAN]},
        }
    )
    transport = manifest.transport.model_copy(
        update={"deliver": deliver.model_copy(update={"retry": retry})}
    )
    write_manifest(folder, manifest.model_copy(update={"transport": transport}))
    return folder


def suzhou_folder(root: Path) -> Path:
    """Suzhou's own adapter folder, under another id and token variable."""
    folder = root / IDS[SUZHOU]
    shutil.copytree(CITIES / "suzhou", folder)
    found = find("suzhou")
    assert found.manifest is not None
    hub = found.manifest.hub.model_copy(update={"token_env": TOKEN_ENV[SUZHOU]})
    write_manifest(folder, found.manifest.model_copy(update={"id": IDS[SUZHOU], "hub": hub}))
    return folder


def hub_rows(hub: HubProcess, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{hub.database_path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def hub_tasks(hub: HubProcess) -> list[dict[str, Any]]:
    return [orjson.loads(body) for (body,) in hub_rows(hub, "SELECT body FROM tasks")]


async def until(check: Callable[[], Any], what: str, hub: HubProcess) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        if not hub.running:
            pytest.fail(f"the hub stopped while waiting for {what}:\n{hub.stderr()[-4000:]}")
        found = check()
        if found:
            return found
        if loop.time() > deadline:
            pytest.fail(f"not within {WAIT_S} s: {what}\n{hub.stderr()[-4000:]}")
        await asyncio.sleep(0.1)


def spill_at_pingwang(run: str) -> Incident:
    return Incident.model_validate(
        {
            "identifier": f"pingwang-{run}",
            "sender": WUJIANG,
            "sent": now_cst(),
            "status": "Actual",
            "msgType": "Alert",
            "scope": "Public",
            "info": [
                {
                    "language": "zh-CN",
                    "category": ["Env"],
                    "event": "太浦河平望段危化品船舶泄漏",
                    "eventCode": [{"valueName": "SZ-SJLX", "value": "shuiwuran"}],
                    "urgency": "Immediate",
                    "severity": "Extreme",
                    "certainty": "Observed",
                    "area": [{"areaDesc": "吴江区平望镇太浦河段", "circle": ["30.975,120.64 1.0"]}],
                }
            ],
        }
    )


def hongqitang_spill(run: str) -> Incident:
    """Jiashan's example incident, as its adapter will decode it, under a fresh identifier."""
    dialect = Dialect.load(DIALECTS / "jiashan.yaml")
    incident = dialect.decode_incident((DIALECTS / "jiashan_incident.json").read_bytes())
    return incident.model_copy(update={"identifier": f"hongqitang-{run}", "sent": now_cst()})


async def test_two_adapters_inside_the_hub_carry_incidents_tasks_and_answers(
    tmp_path: Path, mosquitto: MosquittoFactory
) -> None:
    broker = mosquitto([SUZHOU])
    assert broker.port is not None
    root = tmp_path / "city-adapters"
    folders = {JIASHAN: jiashan_folder(root), SUZHOU: suzhou_folder(root)}
    data_dir = tmp_path / "hub"
    tokens = await asyncio.to_thread(
        add_adapters, data_dir, [(c, IDS[c]) for c in IDS], via_cli=False
    )
    place = MqttPlace(broker.host, broker.port, password(LINK_USER), {SUZHOU: password(SUZHOU)})
    cities: dict[str, SimulatedCity] = {}
    wired: dict[str, Wired] = {}
    env = {
        "LIANDONG_ADAPTER_PATH": str(root),
        "LIANDONG_ADAPTERS": f"{IDS[JIASHAN]}, {IDS[SUZHOU]}",
    }
    for code, folder in folders.items():
        found = find(IDS[code], [root])
        assert found.manifest is not None
        speech = speech_for(found.manifest.codec, folder)
        city = SimulatedCity(
            IDS[code], code, speech, CityPlay(answers=QUICK), seed=1, speed=1.0, names={}
        )
        wired[code] = await wire(
            found.manifest,
            hub_token=tokens[IDS[code]],
            content_type=speech.content_type,
            receive=city.receive,
            mqtt=place,
            kafka=None,
            poll_interval_s=0.2,
        )
        city.transport = wired[code].city
        cities[code] = city
        write_manifest(folder, wired[code].manifest)  # pointed at the simulated city
        env.update(wired[code].env)
        env[TOKEN_ENV[code]] = tokens[IDS[code]]
    listen = wired[JIASHAN].manifest.transport.listen  # type: ignore[union-attr]
    assert listen is not None
    hub = HubProcess(data_dir, env=env)
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Jiashan's door is taken: its adapter crashes at start and is restarted with backoff.
        taken.bind(("127.0.0.1", listen.port))
        taken.listen()
        await asyncio.to_thread(hub.start)
        crashed = f"in-process adapter {IDS[JIASHAN]} crashed"
        await until(lambda: crashed in hub.stderr(), "the Jiashan adapter's crash logged", hub)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{hub.url}/healthz")).status_code == 200
        taken.close()
        for code in IDS:
            ready = f"in-process adapter {IDS[code]} ready"
            await until(lambda r=ready: r in hub.stderr(), f"{IDS[code]} running", hub)  # type: ignore[misc]
        suzhou_link = wired[SUZHOU].city
        assert isinstance(suzhou_link, MqttCity)
        await suzhou_link.start(cities[SUZHOU].receive)

        run = uuid.uuid4().hex[:8]
        sent_jiashan = await cities[JIASHAN].report("hongqitang", hongqitang_spill(run))
        assert sent_jiashan.ok and sent_jiashan.status == 202, sent_jiashan
        sent_suzhou = await cities[SUZHOU].report("pingwang", spill_at_pingwang(run))
        assert sent_suzhou.ok, sent_suzhou

        expected = {(JIASHAN, f"hongqitang-{run}"), (WUJIANG, f"pingwang-{run}")}
        await until(
            lambda: expected <= set(hub_rows(hub, "SELECT sender, identifier FROM incidents")),
            "both incidents stored by the hub",
            hub,
        )

        def answered(target: str) -> list[dict[str, Any]]:
            """The target's tasks once there are some and each is acknowledged or accepted."""
            tasks = [t for t in hub_tasks(hub) if t["target"] == target]
            done = all(t["state"] in ("acknowledged", "accepted") for t in tasks)
            return tasks if done else []

        # Jiashan's spill tasks Wujiang: Suzhou's system hears it over MQTT, in its dialect.
        (wujiang,) = await until(lambda: answered(WUJIANG), "Wujiang's task answered", hub)
        heard = cities[SUZHOU].tasks[wujiang["id"]]
        assert heard.heard.target == WUJIANG
        assert heard.heard.incident == f"{JIASHAN},hongqitang-{run}"
        assert heard.answers[0]["answer"] == "acknowledge" and heard.answers[0]["ok"]
        # Suzhou's spill tasks Jiashan: its endpoint takes the task over HTTP, in its dialect.
        jiashan = await until(lambda: answered(JIASHAN), "Jiashan's tasks answered", hub)
        for task in jiashan:
            heard = cities[JIASHAN].tasks[task["id"]]
            assert heard.heard.incident == f"{WUJIANG},pingwang-{run}"
            assert heard.answers[0] == {
                "answer": "acknowledge",
                "reason": None,
                "ok": True,
                "status": 200,
            }

        status = await asyncio.to_thread(hub.stop)
        assert status == -15, f"not a clean stop ({status}):\n{hub.stderr()[-4000:]}"
        log = hub.stderr()
        assert "in-process adapters stopped" in log
        for code in IDS:
            assert f"in-process adapter {IDS[code]} stopped" in log
        assert "Traceback" not in log, log[-4000:]
    finally:
        taken.close()
        hub.close()
        for city in cities.values():
            await city.close()


def test_an_unknown_adapter_stops_the_hub_before_it_serves(tmp_path: Path) -> None:
    """``--adapters`` names an adapter there is not: the hub says which, and does not start."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from hub.cli import main; main()",
            "run",
            "--no-demo",
            "--data",
            str(tmp_path / "hub"),
            "--port",
            "9",
            "--adapters",
            "suzhou,no-such-city",
        ],
        env=hub_env({"SUZHOU_HUB_TOKEN": "x", "SUZHOU_LINK_MQTT_PASSWORD": "y"}),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "adapter 'no-such-city': no adapter 'no-such-city'" in err
    assert "adapter 'suzhou'" not in err and "Traceback" not in err
