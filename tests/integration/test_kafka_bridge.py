"""The Kafka bridge end to end: a city that runs its own Kafka cluster (a real Kafka-protocol
broker: Tansu, or ``LIANDONG_TEST_KAFKA``), a real hub (subprocess), bridges in this process.

Checked: a record is committed only after the hub accepted it (with the hub down nothing is
committed; once it is up the incident arrives and the offset moves); the hub's tasks land on
the city's task topic keyed by task id; the city's CAP answers on its own topic reach the hub;
an unreadable record is committed and skipped without stopping the ones behind it.
No timings are asserted: every wait is bounded and fails with what it waited for.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from ruamel.yaml import YAML

from adapters.framework.cap_tasks import answer_to_cap
from adapters.framework.discovery import find
from adapters.framework.runner import AdapterRunner, HubAccess
from adapters.links.mqtt_protocol import Answer, TaskAnswer
from hub.bus.kafka_setup import ensure_topics
from hub.codecs.cap import decode_cap, encode_cap
from tests.integration.hubproc import HubProcess, add_adapters, free_port

REPO = Path(__file__).resolve().parents[2]
SPILL = (REPO / "tests" / "fixtures" / "cap" / "liandong_taipu_spill.xml").read_bytes()
WUJIANG, QINGPU = "320509", "310118"
OPTION_KEYS = ("fetch_max_wait_ms", "linger_ms", "session_timeout_ms", "heartbeat_interval_ms")


class City:
    """One city's topics on the broker, and its adapter folder."""

    def __init__(self, code: str, run_id: str) -> None:
        self.code = code
        self.adapter_id = f"kafka-{code}"
        self.messages = f"city.{run_id}.{code}.cap"  # incidents and answers, told apart by CAP
        self.tasks = f"city.{run_id}.{code}.tasks"
        self.group = f"liandong-bridge-{run_id}-{code}"

    def write(self, root: Path, broker: Any) -> None:
        manifest = {
            "id": self.adapter_id,
            "name": f"Kafka bridge test {self.code}",
            "jurisdiction": self.code,
            "transport": {
                "kind": "kafka",
                "bootstrap": broker.bootstrap,
                "group": self.group,
                "topics": {
                    "incidents": self.messages,
                    "answers": self.messages,
                    "tasks": self.tasks,
                },
                "client_options": {k: broker.client_options[k] for k in OPTION_KEYS},
            },
            "codec": {"kind": "cap"},
            "hub": {"token_env": "UNUSED_IN_THIS_TEST"},
            "owners": [{"name": "tests", "contact": "tests@liandong.invalid"}],
            "tasks": {"poll_interval_s": 0.2},
        }
        folder = root / self.adapter_id
        folder.mkdir(parents=True)
        with (folder / "adapter.yaml").open("w", encoding="utf-8") as out:
            YAML(typ="safe", pure=True).dump(manifest, out)


async def until(
    check: Callable[[], Any], what: str, tasks: list[asyncio.Task[None]], timeout_s: float = 45.0
) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError(f"a bridge failed: {task.exception()!r}")
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.1)


async def committed(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed offsets on ``topic``, summed over its partitions."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        total = 0
        for p in partitions:
            total += await consumer.committed(TopicPartition(topic, p)) or 0
        return total
    finally:
        await consumer.stop()


@pytest.fixture
def adapter_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "city-adapters"
    root.mkdir()
    monkeypatch.setenv("LIANDONG_ADAPTER_PATH", str(root))
    return root


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubProcess]:
    process = HubProcess(tmp_path / "hub")
    try:
        yield process
    finally:
        process.close()


async def test_kafka_bridge_commits_after_the_hub_took_it_and_carries_tasks_and_answers(
    kafka_broker: Any, adapter_root: Path, hub: HubProcess
) -> None:
    run_id = uuid.uuid4().hex[:8]
    wujiang, qingpu = City(WUJIANG, run_id), City(QINGPU, run_id)
    for city in (wujiang, qingpu):
        city.write(adapter_root, kafka_broker)
    await ensure_topics(
        kafka_broker.bootstrap, [c for x in (wujiang, qingpu) for c in (x.messages, x.tasks)], 2
    )
    made = await asyncio.to_thread(
        add_adapters, hub.data_dir, [(WUJIANG, "wj-kafka"), (QINGPU, "qp-kafka")], via_cli=False
    )
    tokens = {WUJIANG: made["wj-kafka"], QINGPU: made["qp-kafka"]}
    port = free_port()
    hub_url = f"http://127.0.0.1:{port}"
    runners = {
        code: AdapterRunner(find(city.adapter_id), HubAccess(hub_url, tokens[code]))
        for code, city in ((WUJIANG, wujiang), (QINGPU, qingpu))
    }
    tasks = [asyncio.create_task(r.run()) for r in runners.values()]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, acks="all")
    await producer.start()
    reader = AIOKafkaConsumer(
        qingpu.tasks,
        bootstrap_servers=kafka_broker.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=kafka_broker.client_options["fetch_max_wait_ms"],
    )
    await reader.start()
    try:
        for runner in runners.values():
            await until(runner.ready.is_set, f"bridge {runner.manifest.id} joined", tasks)

        # The hub is down: the bridge holds the record and commits nothing.
        await producer.send_and_wait(wujiang.messages, SPILL, key=b"WJ-2026-0701-001")
        upstream = runners[WUJIANG].upstream
        await until(lambda: upstream.stats["hub_retries"] >= 3, "the bridge tried the hub", tasks)
        assert await committed(kafka_broker.bootstrap, wujiang.group, wujiang.messages) == 0
        assert upstream.stats["incidents_forwarded"] == 0

        await asyncio.to_thread(hub.start, port)
        await until(lambda: upstream.stats["incidents_forwarded"] == 1, "incident forwarded", tasks)
        await until(
            lambda: committed(kafka_broker.bootstrap, wujiang.group, wujiang.messages),
            "the record committed after the hub took it",
            tasks,
        )

        # Down: Qingpu's task on its own topic, keyed by task id.
        batch = await until(
            lambda: reader.getmany(timeout_ms=500), "a task on Qingpu's topic", tasks
        )
        (record,) = [m for msgs in batch.values() for m in msgs]
        task_id = record.key.decode()
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["Idempotency-Key"] == task_id and headers["Liandong-Task-State"] == "issued"
        message = decode_cap(record.value)
        assert message.identifier == task_id and message.addresses == QINGPU

        # Up: a record that is not CAP is committed and skipped; the answer behind it arrives.
        await producer.send_and_wait(qingpu.messages, b"<alert>not CAP</alert>", key=b"x")
        ack = answer_to_cap(
            TaskAnswer(task=task_id, answer=Answer.ACKNOWLEDGE, reason="青浦区值班室已签收"),
            sender=QINGPU,
            identifier="QP-ACK-1",
            sent="2026-07-01T08:40:00+08:00",
            task_sent=message.sent,
        )
        await producer.send_and_wait(qingpu.messages, encode_cap(ack), key=b"x")

        async def acknowledged() -> bool:
            async with httpx.AsyncClient(base_url=hub.url, timeout=10) as client:
                res = await client.get(
                    f"/api/v1/tasks/{task_id}",
                    headers={"Authorization": f"Bearer {tokens[QINGPU]}"},
                )
            return res.status_code == 200 and res.json()["state"] == "acknowledged"

        await until(acknowledged, "Qingpu's acknowledgement reached the hub", tasks)
        await until(
            lambda: committed(kafka_broker.bootstrap, qingpu.group, qingpu.messages),
            "Qingpu's records committed",
            tasks,
        )
        assert await committed(kafka_broker.bootstrap, qingpu.group, qingpu.messages) == 2
        stats = runners[QINGPU].stats
        assert stats["unreadable"] == 1 and stats["answers_forwarded"] == 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await producer.stop()
        await reader.stop()
