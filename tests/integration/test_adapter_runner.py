"""The adapter runner end to end, CAP 1.2 XML over HTTP: a real hub (subprocess), adapters made
from the Shanghai template and found through ``LIANDONG_ADAPTER_PATH``, runners in this process,
and city task endpoints as real HTTP servers that fail the way real ones do.

No timings are asserted: every wait is bounded and fails with what it waited for.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from ruamel.yaml import YAML

from adapters.framework.breaker import BreakerState
from adapters.framework.cap_tasks import answer_to_cap
from adapters.framework.discovery import find
from adapters.framework.runner import AdapterRunner, HubAccess
from adapters.links.mqtt_protocol import Answer, TaskAnswer
from hub.codecs.cap import decode_cap, encode_cap
from tests.integration.city_endpoint import CityEndpoint, Step
from tests.integration.hubproc import HubProcess, add_adapters, free_port

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "adapters" / "cities" / "shanghai" / "adapter.yaml"
DIALECTS = REPO / "adapters" / "codecs" / "examples"
SPILL = (REPO / "tests" / "fixtures" / "cap" / "liandong_taipu_spill.xml").read_bytes()
WUJIANG, QINGPU, JIASHAN = "320509", "310118", "330421"
CODES = {WUJIANG: "wujiang", QINGPU: "qingpu", JIASHAN: "jiashan"}


def write_adapter(
    root: Path, code: str, deliver_url: str | None, dialect: str | None = None
) -> int:
    """An adapter folder made from the Shanghai template (with ``dialect``: that example JSON
    dialect of ``adapters/codecs/examples/`` instead of CAP); returns its listening port."""
    yaml = YAML(typ="safe", pure=True)
    manifest: dict[str, Any] = yaml.load(TEMPLATE.read_text(encoding="utf-8"))
    port = free_port()
    manifest.update(id=f"{CODES[code]}-test", jurisdiction=code, name=f"test adapter {code}")
    transport = manifest["transport"]
    transport["listen"]["port"] = port
    if deliver_url is None:
        del transport["deliver"]
    else:
        transport["deliver"].update(
            url=deliver_url,
            token_env=None,
            retry={"attempts": 4, "initial_s": 0.05, "max_s": 0.2},
            breaker={"failures": 2, "open_s": 0.4, "max_open_s": 2.0},
        )
        del transport["deliver"]["token_env"]
    manifest["tasks"] = {"poll_interval_s": 0.2}
    folder = root / CODES[code]
    folder.mkdir(parents=True)
    if dialect is not None:
        shutil.copy(DIALECTS / f"{dialect}.yaml", folder / "mapping.yaml")
        manifest["codec"] = {"kind": "dialect", "mapping": "mapping.yaml"}
    with (folder / "adapter.yaml").open("w", encoding="utf-8") as out:
        yaml.dump(manifest, out)
    return port


def deadletters(data_dir: Path) -> list[dict[str, Any]]:
    """The dead-letter events in a hub's embedded log (read beside the running hub)."""
    conn = sqlite3.connect(f"file:{data_dir / 'liandong.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT value FROM log WHERE topic = 'liandong.deadletter.v1' ORDER BY \"offset\""
        ).fetchall()
    finally:
        conn.close()
    return [orjson.loads(bytes(value))["data"] for (value,) in rows]


class Stack:
    def __init__(self, root: Path) -> None:
        self.hub = HubProcess(root / "hub")
        made = add_adapters(
            self.hub.data_dir, [(c, f"{n}-test") for c, n in CODES.items()], via_cli=False
        )
        self.tokens = {code: made[f"{name}-test"] for code, name in CODES.items()}
        self.hub.start()
        self.runners: dict[str, AdapterRunner] = {}
        self.ports: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self, code: str) -> AdapterRunner:
        runner = AdapterRunner(
            find(f"{CODES[code]}-test"), HubAccess(self.hub.url, self.tokens[code])
        )
        self.runners[code] = runner
        self._tasks.append(asyncio.create_task(runner.run()))
        await until(runner.ready.is_set, f"adapter {code} ready", self.check)
        return runner

    def check(self) -> None:
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError(f"a runner failed: {task.exception()!r}")

    async def post(
        self, code: str, path: str, body: bytes, token: str | None = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.tokens[code]}"}
        url = f"http://127.0.0.1:{self.ports[code]}{path}"
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(url, content=body, headers=headers)

    async def hub_task(self, code: str, task_id: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.hub.url, timeout=30) as client:
            res = await client.get(
                f"/api/v1/tasks/{task_id}",
                headers={"Authorization": f"Bearer {self.tokens[code]}"},
            )
        res.raise_for_status()
        task: dict[str, Any] = res.json()
        return task

    def task_updates(self) -> list[dict[str, Any]]:
        conn = sqlite3.connect(f"file:{self.hub.database_path}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute(
                "SELECT value FROM log WHERE topic = 'liandong.task-updates.v1' ORDER BY \"offset\""
            ).fetchall()
        finally:
            conn.close()
        return [orjson.loads(value)["data"] for (value,) in rows]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.hub.close()


async def until(
    check: Callable[[], Any], what: str, alive: Callable[[], None], timeout_s: float = 30.0
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        alive()
        if check():
            return
        if loop.time() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def adapter_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "city-adapters"
    root.mkdir()
    monkeypatch.setenv("LIANDONG_ADAPTER_PATH", str(root))
    yield root


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    the_stack = await asyncio.to_thread(Stack, tmp_path)
    try:
        yield the_stack
    finally:
        await the_stack.close()


def answer(code: str, task_id: str, kind: Answer, reason: str | None, n: int) -> bytes:
    message = answer_to_cap(
        TaskAnswer(task=task_id, answer=kind, reason=reason),
        sender=code,
        identifier=f"ANS-{code}-{n}",
        sent="2026-07-01T08:45:00+08:00",
        task_sent="2026-07-01T08:30:00+08:00",
    )
    return encode_cap(message)


async def test_cap_over_http_round_trip_with_retry_breaker_and_dedup(
    stack: Stack, adapter_root: Path
) -> None:
    script: list[Step] = ["503", "drop", "apply-then-500"]
    qingpu_city = await CityEndpoint(script=list(script)).start()
    jiashan_city = await CityEndpoint().start()
    try:
        stack.ports[WUJIANG] = write_adapter(adapter_root, WUJIANG, None)
        stack.ports[QINGPU] = write_adapter(adapter_root, QINGPU, qingpu_city.url)
        stack.ports[JIASHAN] = write_adapter(adapter_root, JIASHAN, jiashan_city.url)
        for code in CODES:
            await stack.run(code)

        # Up: the city's door checks the token and the message before the hub sees it.
        assert (await stack.post(WUJIANG, "/incidents", SPILL, token="wrong")).status_code == 401
        bad = await stack.post(WUJIANG, "/incidents", SPILL.replace(b"<urgency>", b"<urgent>", 1))
        assert bad.status_code == 422 and "line" in bad.json()["detail"]
        res = await stack.post(WUJIANG, "/incidents", SPILL)
        assert res.status_code == 202, res.text
        again = await stack.post(WUJIANG, "/incidents", SPILL)  # a resend: same answer
        assert again.status_code == 202 and again.json() == res.json()

        # Down: Qingpu's endpoint fails three times; the task arrives and takes effect once.
        took = lambda: any(r.answered == 200 for r in qingpu_city.received)  # noqa: E731
        await until(took, "Qingpu's endpoint answered 200", stack.check)
        await until(lambda: jiashan_city.applied, "Jiashan's endpoint took a task", stack.check)
        (task_id,) = qingpu_city.applied
        assert qingpu_city.applied[task_id] == 1
        answered = [r.answered for r in qingpu_city.received]
        assert answered[:4] == [503, None, 500, 200]
        assert len(qingpu_city.bodies(task_id)) == 4
        delivered = decode_cap(qingpu_city.bodies(task_id)[-1])
        assert delivered.identifier == task_id and delivered.addresses == QINGPU
        assert qingpu_city.received[-1].headers["content-type"] == "application/cap+xml"

        # The breaker opened after two failures, probed, opened again, probed, closed; while
        # it was open nothing was sent.
        breaker = stack.runners[QINGPU].delivery.breaker  # type: ignore[union-attr]
        path = [(t.before, t.after) for t in breaker.transitions]
        closed, open_, half = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
        assert path == [
            (closed, open_),
            (open_, half),
            (half, open_),
            (open_, half),
            (half, closed),
        ]
        sent_at = [r.at for r in qingpu_city.received]
        for opened, probing in itertools.pairwise(breaker.transitions):
            if opened.after is open_:
                assert not [t for t in sent_at if opened.at < t < probing.at]

        # Answers go back through the adapter: acknowledge, accept (on the incidents door), done.
        steps = [
            ("/answers", Answer.ACKNOWLEDGE, None, "acknowledged"),
            ("/incidents", Answer.ACCEPT, "已关闭金泽水厂取水口", "accepted"),
            ("/answers", Answer.DONE, "断面采样完成，苯未检出", "done"),
        ]
        for n, (door, kind, reason, state) in enumerate(steps):
            res = await stack.post(QINGPU, door, answer(QINGPU, task_id, kind, reason, n))
            assert res.status_code == 200, res.text
            assert (await stack.hub_task(QINGPU, task_id))["state"] == state

        (jiashan_task,) = jiashan_city.applied
        plain_ack = encode_cap(
            answer_to_cap(
                TaskAnswer(task=jiashan_task, answer=Answer.ACKNOWLEDGE),
                sender=JIASHAN,
                identifier="ANS-330421-8",
                sent="2026-07-01T08:44:00+08:00",
                task_sent="2026-07-01T08:30:00+08:00",
            ).model_copy(update={"code": []})  # a bare CAP Ack acknowledges
        )
        assert (await stack.post(JIASHAN, "/answers", plain_ack)).status_code == 200
        reason = "本县监测力量已全部投入西塘段，请求青浦支援"
        res = await stack.post(
            JIASHAN, "/answers", answer(JIASHAN, jiashan_task, Answer.DECLINE, reason, 9)
        )
        assert res.status_code == 200, res.text
        assert (await stack.hub_task(JIASHAN, jiashan_task))["state"] == "declined"
        updates = [u for u in stack.task_updates() if u["task"] == jiashan_task]
        assert updates[-1]["reason"] == reason and updates[-1]["by"] == "jiashan-test"

        # Someone else's task: the hub refuses it and the city is told why.
        res = await stack.post(JIASHAN, "/answers", answer(JIASHAN, task_id, Answer.DONE, "x", 10))
        assert res.status_code in (403, 409) and res.json()["detail"]

        # Nothing is delivered again once the city has it.
        before = len(qingpu_city.received)
        await asyncio.sleep(4 * 0.2)
        assert len(qingpu_city.received) == before
    finally:
        await qingpu_city.close()
        await jiashan_city.close()


async def test_a_cancelled_task_is_delivered_as_a_cap_cancel(
    stack: Stack, adapter_root: Path
) -> None:
    city = await CityEndpoint().start()
    try:
        stack.ports[WUJIANG] = write_adapter(adapter_root, WUJIANG, None)
        stack.ports[QINGPU] = write_adapter(adapter_root, QINGPU, city.url)
        await stack.run(WUJIANG)
        await stack.run(QINGPU)
        alert = SPILL.replace(b"WJ-2026-0701-001", b"WJ-2026-0702-001")
        assert (await stack.post(WUJIANG, "/incidents", alert)).status_code == 202
        await until(lambda: city.applied, "the task reached Qingpu", stack.check)
        (task_id,) = city.applied
        cancel = (REPO / "tests/fixtures/cap/liandong_taipu_cancel.xml").read_bytes()
        cancel = cancel.replace(b"WJ-2026-0701-003", b"WJ-2026-0702-009").replace(
            b"320509,WJ-2026-0701-001,2026-07-01T08:30:00+08:00 "
            b"320509,WJ-2026-0701-002,2026-07-01T10:05:00+08:00",
            b"320509,WJ-2026-0702-001,2026-07-01T08:30:00+08:00",
        )
        assert (await stack.post(WUJIANG, "/incidents", cancel)).status_code == 202
        key = f"{task_id}.cancelled"
        await until(lambda: city.applied[key], "the cancellation reached Qingpu", stack.check)
        message = decode_cap(city.bodies(key)[-1])
        assert message.msgType.value == "Cancel"
        assert message.references is not None and f"liandong,{task_id}," in message.references
        assert city.applied[task_id] == 1
    finally:
        await city.close()


async def test_json_dialect_adapters_carry_incidents_tasks_and_answers(
    stack: Stack, adapter_root: Path
) -> None:
    """Qingpu's platform speaks its pinyin JSON dialect, Jiashan's its Chinese-named one."""
    city = await CityEndpoint().start()
    try:
        stack.ports[QINGPU] = write_adapter(adapter_root, QINGPU, None, dialect="qingpu")
        stack.ports[JIASHAN] = write_adapter(adapter_root, JIASHAN, city.url, dialect="jiashan")
        await stack.run(QINGPU)
        await stack.run(JIASHAN)
        native = (DIALECTS / "qingpu_incident.json").read_bytes()
        res = await stack.post(QINGPU, "/incidents", native)
        assert res.status_code == 202, res.text
        assert res.json()["identifier"] == "QP-20260701-0042"
        broken = await stack.post(
            QINGPU, "/incidents", native.replace(b'"zhuangtai": 1', b'"zhuangtai": 9')
        )
        assert broken.status_code == 422 and "zhuangtai" in broken.json()["detail"]
        # What the codec refused is kept by the hub, bytes and reason, on the dead-letter topic.
        kept = deadletters(stack.hub.data_dir)
        assert [k["payload"] for k in kept] == [
            native.replace(b'"zhuangtai": 1', b'"zhuangtai": 9').decode()
        ]
        assert "zhuangtai" in kept[0]["reason"] and kept[0]["adapter"] == "qingpu-test"
        assert kept[0]["topic"] == "adapter dialect codec, incidents"

        await until(lambda: city.applied, "Jiashan's endpoint took a task", stack.check)
        (task_id,) = city.applied
        received = city.received[-1]
        assert received.headers["content-type"] == "application/json"
        task = orjson.loads(received.body)
        assert task["任务编号"] == task_id and task["承办单位"] == JIASHAN
        assert task["关联事件"] == "310118,QP-20260701-0042"

        for state, reason in ((1, None), (3, "本县采样车辆检修中，无法出动")):
            body = orjson.dumps({"任务编号": task_id, "处理状态": state, "说明": reason})
            res = await stack.post(JIASHAN, "/answers", body)
            assert res.status_code == 200, res.text
        assert (await stack.hub_task(JIASHAN, task_id))["state"] == "declined"
        updates = [u for u in stack.task_updates() if u["task"] == task_id]
        assert updates[-1]["reason"] == "本县采样车辆检修中，无法出动"
    finally:
        await city.close()
