"""The console's live stream: one reader per hub process, fanned out to many browsers.

The reader follows every event the region emits, from where the log ends when it starts:

- embedded: a consumer of the log (group ``console``), fed in memory after each COMMIT;
- Kafka + PostgreSQL: the shared ``outbox`` table, read by id. Every instance writes its events
  there, so each instance's reader sees all of them, not only its own. Ids come from a sequence
  and may commit out of order; an id missing below the highest one seen is waited for (up to
  ``GAP_WAIT_S``) before the reader's position passes it, so a late commit is not skipped.

Each event is encoded once as a server-sent-events frame; each client has a bounded queue and
its own filter (what its actor may see). A client that falls too far behind is sent a ``reset``
and dropped: the page reloads its data and reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from hub.bus import topics
from hub.bus.port import Record
from hub.errors import HubError, Unavailable
from hub.runtime import Hub
from hub.store.db import Tx
from hub.store.outbox import Outbox

log = logging.getLogger(__name__)

GROUP = "console"
QUEUE_LIMIT = 5000
"""Frames a client may have waiting before it is dropped."""
COALESCE_S = 0.02
"""After each write, a client waits this long so that what arrives meanwhile goes in one write."""
HEARTBEAT_S = 15.0
OUTBOX_POLL_S = 0.1
START_TIMEOUT_S = 10.0
RESET = b"event: reset\ndata: {}\n\n"
GAP_WAIT_S = 2.0
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """What a filter looks at, and the frame every client that may see it gets."""

    topic: str
    type: str
    lane: str
    jurisdiction: str
    parties: frozenset[str]
    frame: bytes


def to_live(record: Record) -> LiveEvent | None:
    """Decode the routing facts of a record and encode its SSE frame once (None if unreadable)."""
    try:
        env = orjson.loads(record.value)
        kind = str(env["type"])
        data = env.get("data") or {}
    except (orjson.JSONDecodeError, KeyError, TypeError):
        log.warning("live stream: record %s@%s is not an event", record.topic, record.offset)
        return None
    parties = {str(env.get("jurisdiction", ""))}
    task = data.get("task") if isinstance(data, dict) else None
    if isinstance(task, dict):
        parties.update(str(task.get(k, "")) for k in ("sender", "target"))
    if isinstance(data, dict):
        parties.update(str(data[k]) for k in ("target", "owner", "partner") if k in data)
    body = orjson.dumps(
        {
            "type": kind,
            "id": env.get("id"),
            "time": env.get("time"),
            "lane": env.get("status"),
            "jurisdiction": env.get("jurisdiction"),
            "subject": env.get("subject"),
            "data": data,
        }
    )
    frame = b"event: " + kind.encode() + b"\ndata: " + body + b"\n\n"
    parties.discard("")
    return LiveEvent(
        record.topic,
        kind,
        str(env.get("status", "")),
        str(env.get("jurisdiction", "")),
        frozenset(parties),
        frame,
    )


Filter = Callable[[LiveEvent], bool]


@dataclass(eq=False)
class Client:
    accept: Filter
    queue: list[bytes] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False

    def offer(self, frame: bytes) -> None:
        if self.dropped:
            return
        if len(self.queue) >= QUEUE_LIMIT:
            self.reset()
        else:
            self.queue.append(frame)
            self.ready.set()

    def reset(self) -> None:
        """Tell the page to reload and reconnect; nothing more is sent to this client."""
        self.queue = [RESET]
        self.dropped = True
        self.ready.set()


class LiveStream:
    """The process's one reader and its clients."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._clients: set[Client] = set()
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()
        self.delivered = 0

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def ensure_started(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="console-live")
        try:
            await asyncio.wait_for(self._started.wait(), START_TIMEOUT_S)
        except TimeoutError:
            raise Unavailable(
                f"the live stream's reader did not start within {START_TIMEOUT_S:.0f} s"
            ) from None

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in list(self._clients):
            client.reset()

    def publish(self, record: Record) -> None:
        event = to_live(record)
        if event is None:
            return
        for client in list(self._clients):
            if client.accept(event):
                client.offer(event.frame)
                self.delivered += 1

    async def subscribe(self, accept: Filter) -> AsyncIterator[bytes]:
        """The frames for one client until it goes away (or falls behind)."""
        await self.ensure_started()
        client = Client(accept)
        self._clients.add(client)
        try:
            yield b"retry: 2000\nevent: hello\ndata: {}\n\n"
            while True:
                try:
                    await asyncio.wait_for(client.ready.wait(), HEARTBEAT_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                client.ready.clear()
                frames, client.queue = client.queue, []
                if frames:
                    yield b"".join(frames)
                if client.dropped:
                    return
                await asyncio.sleep(COALESCE_S)
        finally:
            self._clients.discard(client)

    async def _run(self) -> None:
        while True:
            try:
                if isinstance(self._hub.backends.emitter, Outbox):
                    await self._follow_outbox()
                else:
                    await self._follow_log()
            except asyncio.CancelledError:
                raise
            except HubError as exc:
                log.warning("live stream reader: %s; retrying", exc)
            except Exception:  # the reader's boundary: log and start again
                log.exception("live stream reader failed; retrying")
            # The reader starts again from the log's end: clients reload what they missed.
            self._started.clear()
            for client in list(self._clients):
                client.reset()
            await asyncio.sleep(1.0)

    async def _follow_log(self) -> None:
        bus = self._hub.bus
        watched = topics.ALL_TOPICS
        consumer = bus.consumer(GROUP, watched)
        try:
            ends = await bus.end_offsets(watched)
            await consumer.commit([Record(t, 0, o, None, b"", 0) for t, o in ends.items()])
            self._started.set()
            while True:
                records = await consumer.poll(_BATCH, 5.0)
                for record in records:
                    self.publish(record)
                if records:
                    await consumer.commit(records)
        finally:
            await consumer.close()

    async def _follow_outbox(self) -> None:
        db = self._hub.db
        (start,) = await db.run(
            lambda tx: tx.conn.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()
        )
        reader = OutboxReader(int(start))
        self._started.set()
        while True:
            rows = await db.run(reader.fetch)
            for record in reader.accept(rows, time.monotonic()):
                self.publish(record)
            await asyncio.sleep(OUTBOX_POLL_S)


class OutboxReader:
    """Follows the outbox by id without skipping a row that commits after a higher id."""

    def __init__(self, position: int) -> None:
        self.position = position
        """Every id at or below has been published or given up on."""
        self._seen: set[int] = set()
        self._gap_since: float | None = None

    def fetch(self, tx: Tx) -> list[tuple[int, str, str | None, bytes, int]]:
        rows = tx.conn.execute(
            "SELECT id, topic, key, value, created_ms FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
            (self.position, _BATCH),
        ).fetchall()
        return [(int(i), t, k, bytes(v), int(ts)) for i, t, k, v, ts in rows]

    def accept(
        self, rows: Sequence[tuple[int, str, str | None, bytes, int]], now: float
    ) -> list[Record]:
        fresh = [Record(t, -1, i, k, v, ts) for i, t, k, v, ts in rows if i not in self._seen]
        self._seen.update(r.offset for r in fresh)
        # Advance over the contiguous run; a hole waits GAP_WAIT_S for a late commit.
        while self._seen:
            if self.position + 1 in self._seen:
                self.position += 1
                self._seen.discard(self.position)
                self._gap_since = None
                continue
            if self._gap_since is None:
                self._gap_since = now
            if now - self._gap_since < GAP_WAIT_S:
                break
            self.position = min(self._seen) - 1  # give up on the hole (a rolled-back id)
            self._gap_since = None
        return fresh


def jurisdiction_filter(
    jurisdiction: str | None, speaks_for: Callable[[str, str], bool], everything: bool
) -> Filter:
    """Incidents are the regional picture (everyone); tasks, stock and audit are the parties'."""

    def accept(event: LiveEvent) -> bool:
        if everything or event.type == "incident.reported":
            return True
        if event.topic.endswith(topics.AUDIT) or event.topic.endswith(topics.DEADLETTER):
            return False
        return jurisdiction is not None and any(speaks_for(jurisdiction, p) for p in event.parties)

    return accept


def stream_of(app_state: Any) -> LiveStream:
    live: LiveStream | None = getattr(app_state, "live", None)
    if live is None:
        live = LiveStream(app_state.hub)
        app_state.live = live
    return live


async def stop_live(app_state: Any) -> None:
    """Stop the process's reader (at shutdown, before the hub closes the bus)."""
    live: LiveStream | None = getattr(app_state, "live", None)
    if live is not None:
        await live.stop()
