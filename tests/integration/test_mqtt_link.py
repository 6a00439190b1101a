"""The MQTT link end to end: a real hub (subprocess), Debian's mosquitto running the deployment's
configuration (``deploy/mosquitto/``) on a free loopback port, the link in this process, and city
systems as MQTT 5 clients (``adapters.links.mqtt_city.CityClient``).

No timings are asserted: every wait is bounded and fails with what it waited for.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import orjson
import pytest

from adapters.framework.codec import DialectCodec
from adapters.links.link_config import LinkConfig
from adapters.links.mqtt_city import CityClient
from adapters.links.mqtt_link import MqttLink
from adapters.links.mqtt_protocol import topic
from adapters.links.mqtt_refusals import BrokerLogWatcher, Refusal
from adapters.transports.mqtt import (
    NOT_AUTHORIZED,
    ConnectionLost,
    MqttEndpoint,
    PublishRefused,
    connect,
)
from adapters.transports.mqtt_session import Backoff, keep_connected
from tests.brokers.mosquitto import LINK_USER, endpoint, password, require_mosquitto, start_broker
from tests.factories import cap
from tests.integration.hubproc import HubProcess, add_adapters

QINGPU, WUJIANG, JIASHAN, SUZHOU, JIAXING = "310118", "320509", "330421", "320500", "330400"
CODES = (QINGPU, WUJIANG, JIASHAN, SUZHOU, JIAXING)
EXAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "codecs" / "examples"
FAST = Backoff(initial_s=0.05, max_s=1.0)
LIANDONG = [sys.executable, "-c", "from hub.cli import main; main()"]


class Stack:
    """Broker, hub, link and cities of one test; :meth:`close` stops every one of them."""

    def __init__(self, root: Path) -> None:
        self.broker = start_broker(root / "mosquitto", CODES)
        self.hub = HubProcess(root / "hub")
        self._background: list[asyncio.Task[None]] = []
        self._cities: dict[CityClient, asyncio.Task[None]] = {}
        try:
            made = add_adapters(
                self.hub.data_dir, [(code, f"mqtt-{code}") for code in CODES], via_cli=False
            )
            self.tokens = {code: made[f"mqtt-{code}"] for code in CODES}
            self.hub.start()
        except BaseException:
            self.broker.close()
            self.hub.close()
            raise
        self.http = httpx.AsyncClient(base_url=self.hub.url, timeout=30.0)

    async def close(self) -> None:
        tasks = [*self._background, *self._cities.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.http.aclose()
        self.broker.close()
        self.hub.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(coro)

    def check(self) -> None:
        """Fail at once if a link or city task died."""
        for task in [*self._background, *self._cities.values()]:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError(f"a background task failed: {task.exception()!r}")

    async def until(self, check: Callable[[], Any], what: str, timeout_s: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            self.check()
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            if loop.time() > deadline:
                pytest.fail(f"not within {timeout_s} s: {what}")
            await asyncio.sleep(0.05)

    # -- parts -----------------------------------------------------------------------------------
    async def start_link(self, serve: Iterable[str], **options: Any) -> MqttLink:
        config = LinkConfig(
            broker=endpoint(self.broker, LINK_USER, "liandong-link-test"),
            hub_url=self.hub.url,
            tokens={code: self.tokens[code] for code in serve},
            poll_interval_s=0.2,
            broker_log=self.broker.log_path,
            backoff=FAST,
            **{"resend_interval_s": 5.0, **options},
        )
        link = MqttLink(config)
        self._background.append(self._spawn(link.run()))
        await self.until(link.connected.is_set, "the link is connected", 15)
        return link

    def city(self, code: str, backoff: Backoff = FAST) -> CityClient:
        return CityClient(endpoint(self.broker, code, f"city-{code}"), code, backoff=backoff)

    async def run_city(self, city: CityClient) -> CityClient:
        self._cities[city] = self._spawn(city.run())
        await self.until(city.connected.is_set, f"city {city.jurisdiction} is connected", 15)
        return city

    async def stop_city(self, city: CityClient) -> None:
        city.stop()
        await asyncio.wait_for(self._cities.pop(city), 15)

    # -- the hub's API ---------------------------------------------------------------------------
    def auth(self, code: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[code]}"}

    async def post_incidents(self, count: int, prefix: str, concurrency: int = 32) -> None:
        """``count`` Jinze spills from Qingpu over HTTP: each issues a task to Wujiang."""
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with gate:
                res = await self.http.post(
                    "/api/v1/incidents",
                    content=orjson.dumps(cap(f"{prefix}-{i}")),
                    headers=self.auth(QINGPU),
                )
                assert res.status_code == 202, res.text

        await asyncio.gather(*(one(i) for i in range(count)))

    async def tasks(self, target: str, *states: str) -> list[dict[str, Any]]:
        params = [("target", target), ("limit", "5000"), *(("state", s) for s in states)]
        res = await self.http.get("/api/v1/tasks", params=params, headers=self.auth(target))
        assert res.status_code == 200, res.text
        found: list[dict[str, Any]] = res.json()["tasks"]
        return found

    async def incident_status(self, identifier: str) -> int:
        res = await self.http.get(f"/api/v1/incidents/{identifier}", headers=self.auth(QINGPU))
        return res.status_code

    async def incident_stored(self, identifier: str) -> bool:
        return await self.incident_status(identifier) == 200

    def audit_events(self) -> list[dict[str, Any]]:
        conn = sqlite3.connect(f"file:{self.hub.database_path}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute(
                "SELECT value FROM log WHERE topic = 'liandong.audit.v1' ORDER BY \"offset\""
            ).fetchall()
        finally:
            conn.close()
        return [orjson.loads(value) for (value,) in rows]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    require_mosquitto()
    the_stack = await asyncio.to_thread(Stack, tmp_path)
    try:
        yield the_stack
    finally:
        await the_stack.close()


async def test_an_incident_over_mqtt_reaches_the_hub_and_its_tasks_reach_the_neighbours(
    stack: Stack,
) -> None:
    link = await stack.start_link(serve=(QINGPU, WUJIANG, JIASHAN))
    qingpu, wujiang, jiashan = [
        await stack.run_city(stack.city(code)) for code in (QINGPU, WUJIANG, JIASHAN)
    ]
    assert qingpu.connection is not None and qingpu.connection.tcp_nodelay()

    assert await qingpu.report(cap("mq-jinze-1")) == 0  # PUBACK: success, and routed
    await stack.until(lambda: stack.incident_stored("mq-jinze-1"), "the hub has the incident", 15)

    await stack.until(
        lambda: wujiang.applied and jiashan.applied, "Wujiang and Jiashan got their tasks"
    )
    for city in (wujiang, jiashan):
        (task_id,) = city.applied
        assert city.applied[task_id] == 1

    async def both_acknowledged() -> bool:
        res = await stack.http.get(
            "/api/v1/tasks", params={"incident": "mq-jinze-1"}, headers=stack.auth(QINGPU)
        )
        states = {t["target"]: t["state"] for t in res.json()["tasks"]}
        return states.get(WUJIANG) == states.get(JIASHAN) == "acknowledged"

    await stack.until(both_acknowledged, "the neighbours' acknowledgements reached the hub")
    assert link.stats["incidents_forwarded"] == 1
    assert link.stats["answers_forwarded"] >= 2
    assert link.city_status == {QINGPU: "online", WUJIANG: "online", JIASHAN: "online"}


async def test_a_live_only_link_never_sends_an_exercise_task(stack: Stack) -> None:
    """The isolation guard at the MQTT door: Wujiang's link is live-only, so of a live and an
    exercise spill it receives only the live task; the exercise one is settled, never sent."""
    link = await stack.start_link(serve=(WUJIANG,), live_only=True)
    wujiang = await stack.run_city(stack.city(WUJIANG))
    for identifier, status in (("mq-drill-1", "Exercise"), ("mq-live-1", "Actual")):
        res = await stack.http.post(
            "/api/v1/incidents",
            content=orjson.dumps(cap(identifier, status=status)),
            headers=stack.auth(QINGPU),
        )
        assert res.status_code == 202, res.text
    await stack.until(lambda: wujiang.applied, "Wujiang got the live task")
    await stack.until(lambda: link.stats["exercise_refused"] >= 1, "the exercise task was held")
    await asyncio.sleep(1.0)  # several polls: the exercise task is not sent later either
    live = {t["id"] for t in await stack.tasks(WUJIANG) if t["lane"] == "actual"}
    assert set(wujiang.applied) == live and len(live) == 1
    assert link.stats["exercise_refused"] == 1


async def test_a_dialect_message_the_link_cannot_read_is_kept_by_the_hub(stack: Stack) -> None:
    """Qingpu speaks its pinyin JSON dialect over MQTT: a message its codec refuses is settled
    (not redelivered forever) and handed to the hub's dead-letter store with the reason; the
    messages before and after reach the hub."""
    codec = DialectCodec(EXAMPLES / "qingpu.yaml")
    native = (EXAMPLES / "qingpu_incident.json").read_bytes()
    link = await stack.start_link(serve=(QINGPU,), codec=codec)
    qingpu = await stack.run_city(stack.city(QINGPU))
    broken = native.replace(b'"zhuangtai": 1', b'"zhuangtai": 9')
    assert broken != native
    for body in (native, broken, native.replace(b"QP-20260701-0042", b"QP-20260701-0043")):
        assert await qingpu.report(body) == 0

    def kept() -> list[dict[str, Any]]:
        conn = sqlite3.connect(f"file:{stack.hub.database_path}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute(
                "SELECT value FROM log WHERE topic = 'liandong.deadletter.v1'"
            ).fetchall()
        finally:
            conn.close()
        return [orjson.loads(value)["data"] for (value,) in rows]

    await stack.until(kept, "the refused message reached the dead-letter store", 15)
    for identifier in ("QP-20260701-0042", "QP-20260701-0043"):
        await stack.until(lambda i=identifier: stack.incident_stored(i), f"{identifier} stored")
    (letter,) = kept()
    assert letter["payload"] == broken.decode() and "zhuangtai" in letter["reason"]
    assert letter["topic"] == "adapter dialect codec, incidents"
    assert link.stats["incidents_unreadable"] == 1 and link.stats["incidents_forwarded"] == 2


async def test_a_city_that_drops_off_is_marked_offline_by_its_last_will(stack: Stack) -> None:
    link = await stack.start_link(serve=(WUJIANG,))
    slow = Backoff(initial_s=1.0, max_s=1.0, jitter=0.0)  # reconnects after a second
    wujiang = await stack.run_city(stack.city(WUJIANG, backoff=slow))
    await stack.until(lambda: link.city_status.get(WUJIANG) == "online", "online")
    wujiang.drop()  # no DISCONNECT: the broker publishes the will
    await stack.until(lambda: link.city_status.get(WUJIANG) == "offline", "the will: offline")
    await stack.until(lambda: link.city_status.get(WUJIANG) == "online", "back online", 15)


async def _refused_publish(stack: Stack) -> PublishRefused:
    """Suzhou's credential publishes an incident into Jiaxing's subtree."""
    suzhou = endpoint(stack.broker, SUZHOU, "suzhou-claims-jiaxing")
    async with connect(suzhou) as conn:
        assert conn.tcp_nodelay()
        with pytest.raises(PublishRefused) as refused:
            await conn.publish(
                topic(JIAXING, "incidents"), orjson.dumps(cap("jx-1", sender=JIAXING)), qos=1
            )
        # Its own subtree is fine.
        own = await conn.publish(
            topic(SUZHOU, "incidents"), orjson.dumps(cap("sz-1", sender=SUZHOU)), qos=1
        )
        assert own == 0
    return refused.value


async def test_a_suzhou_credential_cannot_publish_into_jiaxings_topics(stack: Stack) -> None:
    link = await stack.start_link(serve=(SUZHOU, JIAXING))
    refused = await _refused_publish(stack)
    assert refused.reason_code == NOT_AUTHORIZED == 135
    assert refused.topic == "liandong/v1/330400/incidents"
    assert "liandong/v1/330400/incidents" in str(refused) and "135" in str(refused)

    # Why MQTT 5: the same refusal answered to an MQTT 3.1.1 client is a plain PUBACK.
    async with aiomqtt.Client(
        stack.broker.host,
        stack.broker.port or 0,
        username=SUZHOU,
        password=password(SUZHOU),
        identifier="suzhou-mqtt311",
        protocol=aiomqtt.ProtocolVersion.V311,
    ) as old:
        await old.publish(topic(JIAXING, "incidents"), b"{}", qos=1)  # "success"

    # The link read the refusal in the broker's log and reported it to the hub.
    def reported() -> list[Any]:
        return [
            r
            for r in link.refusals
            if r.client_id == "suzhou-claims-jiaxing" and r.hub_status is not None
        ]

    await stack.until(reported, "the link reported the refusal to the hub", 15)
    (refusal,) = reported()
    assert (refusal.credential, refusal.jurisdiction_claimed) == (SUZHOU, JIAXING)
    body = refusal.report()
    assert body["credential"] == SUZHOU and body["jurisdiction_claimed"] == JIAXING
    assert body["topic"] == "liandong/v1/330400/incidents"
    assert "135" in body["reason"] and body["id"] and body["observed"]
    assert any(r.client_id == "suzhou-mqtt311" for r in link.refusals)

    # Suzhou's own incident reached the hub; nothing came through Jiaxing's subtree.
    await stack.until(lambda: stack.incident_stored("sz-1"), "Suzhou's own incident", 15)
    assert await stack.incident_status("jx-1") == 404
    assert link.stats["incidents_forwarded"] == 1


async def test_the_hub_records_the_refused_publish(stack: Stack) -> None:
    link = await stack.start_link(serve=(SUZHOU, JIAXING))
    await _refused_publish(stack)
    await stack.until(
        lambda: any(r.hub_status is not None for r in link.refusals), "a report was sent", 15
    )
    refusal = next(r for r in link.refusals if r.hub_status is not None)
    assert refusal.reported, f"the hub answered {refusal.hub_status}"
    refused = [e for e in stack.audit_events() if e["type"] == "intake.refused"]
    assert refused, "no intake.refused event on liandong.audit.v1"
    data = refused[-1]["data"]
    assert (data["credential_jurisdiction"], data["claimed"]) == (SUZHOU, JIAXING)
    assert "liandong/v1/330400/incidents" in orjson.dumps(data).decode()


async def test_a_city_offline_while_1500_tasks_are_issued_gets_each_once_when_back(
    stack: Stack,
) -> None:
    link = await stack.start_link(serve=(WUJIANG,))
    wujiang = await stack.run_city(stack.city(WUJIANG))  # its session and subscription
    await stack.stop_city(wujiang)
    await stack.until(lambda: link.city_status.get(WUJIANG) == "offline", "Wujiang offline")

    await stack.post_incidents(1500, "offline")

    async def issued() -> bool:
        return len(await stack.tasks(WUJIANG, "issued")) == 1500

    await stack.until(issued, "1,500 tasks issued to Wujiang", 180)
    await stack.until(
        lambda: link.stats["tasks_sent"] >= 1500, "all 1,500 handed to the broker", 60
    )
    assert wujiang.received == 0

    await stack.run_city(wujiang)
    await stack.until(lambda: len(wujiang.applied) == 1500, "Wujiang applied 1,500 tasks", 180)
    # All from the broker's queue for its session: with mosquitto's default max_queued_messages
    # (1000) the queue is cut silently and only the link's re-sends would bring the rest.
    assert link.stats["tasks_resent"] == 0, dict(link.stats)

    async def acknowledged() -> bool:
        return len(await stack.tasks(WUJIANG, "acknowledged")) == 1500

    await stack.until(acknowledged, "all 1,500 acknowledged in the hub", 180)
    assert await stack.tasks(WUJIANG, "issued", "delivered", "escalated") == []
    assert len(wujiang.applied) == 1500
    assert set(wujiang.applied.values()) == {1}, "a task was applied twice"
    assert wujiang.received >= 1500


async def test_killing_the_broker_mid_stream_loses_no_task(stack: Stack) -> None:
    link = await stack.start_link(serve=(WUJIANG,), resend_interval_s=2.0)
    wujiang = await stack.run_city(stack.city(WUJIANG))
    count = 400
    posting = asyncio.create_task(stack.post_incidents(count, "kill", concurrency=2))
    await stack.until(lambda: len(wujiang.applied) >= 40, "the stream is flowing", 60)
    await asyncio.to_thread(stack.broker.kill)
    applied_at_kill = len(wujiang.applied)
    await asyncio.sleep(0.5)
    await asyncio.to_thread(stack.broker.start)  # same port, same persistence directory
    await posting

    async def acknowledged() -> bool:
        return len(await stack.tasks(WUJIANG, "acknowledged")) == count

    await stack.until(acknowledged, f"all {count} tasks acknowledged in the hub", 180)
    assert applied_at_kill < count, "the broker was killed after the stream had ended"
    assert len(wujiang.applied) == count
    assert set(wujiang.applied.values()) == {1}, "a task was applied twice"
    assert stack.broker.runs == 2
    print(f"applied at the kill: {applied_at_kill}/{count}; link: {dict(link.stats)}")


async def test_the_broker_log_watcher_survives_rotation_and_reads_each_denial_once(
    tmp_path: Path,
) -> None:
    """No broker: mosquitto's own line formats, written to a file that is rotated by rename."""
    log_file = tmp_path / "mosquitto.log"
    seen: list[Refusal] = []

    async def on_refusal(refusal: Refusal) -> None:
        seen.append(refusal)

    def write(*lines: str) -> None:
        with log_file.open("a") as handle:
            handle.writelines(f"2026-07-01T08:30:00: {line}\n" for line in lines)

    write(
        "New client connected from 127.0.0.1:50953 as suzhou-1 (p5, c0, k60, u'320500').",
        "Denied PUBLISH from suzhou-1 (d0, q1, r0, m1, 'liandong/v1/330400/incidents', ... "
        "(12 bytes))",
        "Received PUBLISH from suzhou-1 (d0, q1, r0, m2, 'liandong/v1/320500/incidents', ... "
        "(12 bytes))",
    )
    watcher = BrokerLogWatcher(log_file, on_refusal, poll_s=0.02)
    task = asyncio.create_task(watcher.run())
    try:
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.01)
        log_file.rename(tmp_path / "mosquitto.log.1")  # logrotate's default: rename, create
        write(
            "New client connected from 127.0.0.1:50999 as anon-1 (p5, c1, k60).",
            "Denied PUBLISH from anon-1 (d0, q0, r0, m0, 'somewhere/else', ... (3 bytes))",
        )
        for _ in range(200):
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    first, second = seen
    assert (first.credential, first.jurisdiction_claimed, first.qos) == (SUZHOU, JIAXING, 1)
    assert first.topic == "liandong/v1/330400/incidents" and first.observed == "2026-07-01T08:30:00"
    assert (second.credential, second.jurisdiction_claimed, second.topic) == (
        None,
        None,
        "somewhere/else",
    )
    assert first.id != second.id
    # Read again from the start (a restarted link): the same ids, so the hub can ignore them.
    again: list[Refusal] = []

    async def collect(refusal: Refusal) -> None:
        again.append(refusal)

    rerun = asyncio.create_task(BrokerLogWatcher(log_file, collect, poll_s=0.02).run())
    try:
        for _ in range(200):
            if again:
                break
            await asyncio.sleep(0.01)
    finally:
        rerun.cancel()
        await asyncio.gather(rerun, return_exceptions=True)
    assert [r.id for r in again] == [second.id]


def test_the_quick_benchmark_prints_one_json_object_and_loses_nothing() -> None:
    """``liandong bench mqtt --json --quick``: correctness only, never timings."""
    require_mosquitto()
    done = subprocess.run(
        [*LIANDONG, "bench", "mqtt", "--json", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout[-3000:]
    result = orjson.loads(lines[0])
    for key in ("p99_ms_at_500", "baseline_p99_ms", "p50_ms_at_500", "baseline_p50_ms"):
        assert isinstance(result[key], float) and result[key] > 0, (key, result[key])
    assert result["lost"] == 0 and result["baseline_lost"] == 0 and result["refused"] == 0
    assert result["client_tcp_nodelay"] is True
    assert result["rate_per_s"] == 500.0


async def test_a_wrong_password_is_refused_at_connect_and_retried_with_backoff(
    tmp_path: Path,
) -> None:
    require_mosquitto()
    broker = await asyncio.to_thread(start_broker, tmp_path / "mosquitto", [WUJIANG])
    try:
        wrong = MqttEndpoint(
            host=broker.host,
            port=broker.port or 0,
            client_id="city-320509",
            username=WUJIANG,
            password="not-its-password",
        )

        async def never(conn: Any) -> None:
            raise AssertionError("connected with a wrong password")

        with pytest.raises(ConnectionLost, match="320509@") as refused:
            await keep_connected(wrong, never, backoff=FAST, max_attempts=3)
        assert "Not authorized" in str(refused.value) or "password" in str(refused.value)
        async with connect(endpoint(broker, WUJIANG, "city-320509")) as conn:
            assert conn.tcp_nodelay()
    finally:
        broker.close()
