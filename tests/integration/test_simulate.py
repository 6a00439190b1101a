"""``liandong simulate`` end to end: a real hub (subprocess), the city adapters of
``adapters/cities/`` run by the simulator, and simulated city systems over HTTP, MQTT (a real
mosquitto with the deployment's ACL) and Kafka (a real Tansu, or ``LIANDONG_TEST_KAFKA``).

Suzhou reports a Taipu River spill in its pinyin JSON over MQTT (for Wujiang, one of its
districts); Zhoushan a typhoon in CAP 1.1 over HTTP (for Daishan); Ningbo a typhoon in its
English JSON on its own Kafka. The hub's playbooks address tasks to districts; each city's
adapter delivers its districts' tasks in the city's own format, and the cities answer as the
scenario says: Jiaxing declines everything with a reason (MQTT), Shanghai accepts (CAP over
HTTP), Ningbo accepts and reports done (Kafka), Zhoushan accepts (CAP 1.1), Huzhou stays silent
(EDXL-DE over HTTP). The hub must record each answer, and Huzhou's task must stay unanswered.

No timings are asserted: every wait is bounded and fails with what it waited for.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.simulator.play import Setup, Simulation
from adapters.simulator.region_scenario import RegionScenario
from adapters.simulator.wiring import KafkaPlace, MqttPlace
from hub.model.region import city_of
from tests.brokers.mosquitto import LINK_USER, MosquittoFactory, mosquitto, password
from tests.integration.hubproc import HubProcess, add_adapters

__all__ = ["mosquitto"]  # the fixture, imported for this module

REPO = Path(__file__).resolve().parents[2]
CITIES = REPO / "adapters" / "cities"
CODES = {
    "suzhou": "320500",
    "jiaxing": "330400",
    "shanghai": "310000",
    "huzhou": "330500",
    "ningbo": "330200",
    "zhoushan": "330900",
}
DECLINE = "嘉善县备用水源管线检修中，暂不具备切换条件，请示市级协调"
QUICK = {"kind": "fixed", "s": 0.2}


def _area(desc: str, circle: str) -> dict[str, Any]:
    return {"areaDesc": desc, "circle": [circle]}


def scenario() -> RegionScenario:
    spill = {
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
                "area": [_area("吴江区平望镇太浦河段", "30.975,120.64 1.0")],
            }
        ],
    }
    typhoon = {
        "status": "Actual",
        "msgType": "Alert",
        "scope": "Public",
        "info": [
            {
                "language": "zh-CN",
                "category": ["Met"],
                "event": "台风“梅花”风暴潮",
                "urgency": "Expected",
                "severity": "Extreme",
                "certainty": "Likely",
                "area": [_area("岱山县及周边海域", "30.25,122.2 30")],
            }
        ],
    }
    beilun = {
        "status": "Actual",
        "msgType": "Alert",
        "scope": "Public",
        "info": [
            {
                "language": "zh-CN",
                "category": ["Met"],
                "event": "台风“梅花”风暴潮预警",
                "eventCode": [{"valueName": "NB-EOC-TYPE", "value": "1101"}],
                "urgency": "Expected",
                "severity": "Severe",
                "certainty": "Likely",
                "area": [_area("北仑区沿海", "29.9,121.85 10.0")],
            }
        ],
    }
    return RegionScenario.model_validate(
        {
            "title": "test",
            "seed": 1,
            "run_for": 600,
            "cities": {
                "suzhou": {
                    "answers": {"delay": QUICK},
                    "incidents": [
                        {"at": 0, "name": "pingwang", "sender": "320509", "message": spill}
                    ],
                },
                "jiaxing": {
                    "answers": {
                        "delay": QUICK,
                        "decline": {"probability": 1.0, "reasons": [DECLINE]},
                    }
                },
                "shanghai": {"answers": {"delay": QUICK}},
                "huzhou": {"answers": {"delay": QUICK, "silence": 1.0}},
                "ningbo": {
                    "answers": {"delay": QUICK, "done": 1.0},
                    "incidents": [{"at": 0, "name": "beilun", "message": beilun}],
                },
                "zhoushan": {
                    "cap_version": "1.1",
                    "answers": {"delay": QUICK},
                    "incidents": [
                        {"at": 0, "name": "daishan", "sender": "330921", "message": typhoon}
                    ],
                },
            },
        }
    )


def hub_rows(hub: HubProcess, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{hub.database_path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def hub_tasks(hub: HubProcess) -> list[dict[str, Any]]:
    return [orjson.loads(body) for (body,) in hub_rows(hub, "SELECT body FROM tasks")]


def decline_reasons(hub: HubProcess) -> dict[str, str | None]:
    rows = hub_rows(
        hub, "SELECT value FROM log WHERE topic = 'liandong.task-updates.v1' ORDER BY \"offset\""
    )
    updates = [orjson.loads(value)["data"] for (value,) in rows]
    return {u["task"]: u.get("reason") for u in updates if u["state"] == "declined"}


async def until(
    check: Callable[[], Any], what: str, sim: Simulation, timeout_s: float = 45.0
) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        sim.check()
        found = check()
        if found:
            return found
        if loop.time() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.2)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[tuple[HubProcess, dict[str, str]]]:
    process = HubProcess(tmp_path / "hub")
    try:
        made = await asyncio.to_thread(
            add_adapters,
            process.data_dir,
            [(code, f"sim-{name}") for name, code in CODES.items()],
            via_cli=False,
        )
        await asyncio.to_thread(process.start)
        yield process, {name: made[f"sim-{name}"] for name in CODES}
    finally:
        process.close()


async def test_simulated_cities_report_in_their_dialects_and_answer_their_districts_tasks(
    hub: tuple[HubProcess, dict[str, str]], mosquitto: MosquittoFactory, kafka_broker: Any
) -> None:
    process, tokens = hub
    broker = mosquitto([CODES["suzhou"], CODES["jiaxing"]])
    assert broker.port is not None
    setup = Setup(
        hub_url=process.url,
        tokens=tokens,
        mqtt=MqttPlace(
            broker.host,
            broker.port,
            password(LINK_USER),
            {code: password(code) for code in (CODES["suzhou"], CODES["jiaxing"])},
        ),
        kafka=KafkaPlace(kafka_broker.bootstrap, kafka_broker.client_options),
        run_id=uuid.uuid4().hex[:8],
        poll_interval_s=0.2,
        roots=[CITIES],
    )
    async with Simulation(scenario(), setup) as sim:
        assert sim.skipped == {}
        run = sim.run_id

        # Up: three incidents, in three formats over three transports, stored by the hub.
        expected = {
            ("320509", f"pingwang-{run}"),  # Suzhou's pinyin JSON over MQTT, for Wujiang
            ("330921", f"daishan-{run}"),  # Zhoushan's CAP 1.1 over HTTP, for Daishan
            ("330200", f"beilun-{run}"),  # Ningbo's English JSON on Kafka
        }

        def stored() -> bool:
            rows = hub_rows(process, "SELECT sender, identifier FROM incidents")
            return expected <= set(rows)

        await until(stored, "the three incidents stored by the hub", sim)

        # Down and back: every planned task reaches its city (a district's task reaches the
        # city's system) and the hub records what each city answered.
        names = {code: name for name, code in CODES.items()}

        def city(task: dict[str, Any]) -> str:
            return names.get(city_of(str(task["target"])), "?")

        def wanted(task: dict[str, Any]) -> str | None:
            asks_accept = task["response"] == "accept"
            return {
                "jiaxing": "declined",
                "shanghai": "accepted" if asks_accept else "acknowledged",
                "zhoushan": "accepted" if asks_accept else "acknowledged",
                "ningbo": "done" if asks_accept else "acknowledged",
            }.get(city(task))

        def settled() -> list[dict[str, Any]] | None:
            tasks = hub_tasks(process)
            if not {"jiaxing", "shanghai", "huzhou", "ningbo", "zhoushan"} <= {
                city(t) for t in tasks
            }:
                return None
            if any(wanted(t) not in (None, t["state"]) for t in tasks):
                return None
            return tasks

        tasks = await until(settled, "every city's answers recorded by the hub", sim)
        assert {city(t) for t in tasks} <= set(CODES) - {"suzhou"}
        assert any(t["target"] != CODES[city(t)] for t in tasks), "tasks for districts"
        for task in tasks:
            heard = sim.cities[city(task)].tasks.get(task["id"])
            assert heard is not None, f"{city(task)} never heard of task {task['id']}"
            assert heard.heard.target == task["target"]
            assert heard.heard.incident == task["incident"]

        reasons = decline_reasons(process)
        jiaxing = [t for t in tasks if city(t) == "jiaxing"]
        assert jiaxing and all(reasons.get(t["id"]) == DECLINE for t in jiaxing)

        # Huzhou heard its task (an EDXL-DE distribution) and stays silent: no answer, while
        # the other cities' answers, which came later, are all recorded.
        huzhou = [t for t in tasks if city(t) == "huzhou"]
        assert huzhou and all(t["state"] in ("issued", "escalated") for t in huzhou)
        assert all(sim.cities["huzhou"].tasks[t["id"]].answers == [] for t in huzhou)

        # What each simulated city answered, as the simulator reports it.
        report = sim.report()["cities"]
        ningbo = [t for t in report["ningbo"]["tasks"] if t["response"] == "accept"]
        assert ningbo and all(
            [a["answer"] for a in t["answers"]] == ["acknowledge", "accept", "done"] for t in ningbo
        )
        shanghai = [a for t in report["shanghai"]["tasks"] for a in t["answers"]]
        assert shanghai and all(a["status"] == 200 for a in shanghai)
        assert all(i["ok"] for c in report.values() for i in c["incidents"])
