"""The processes ``bench kafka`` runs beside the hub: a task reader and the bare baseline pipeline.

Each is its own process (``python -m bench.kafka_peers reader|pipeline ...``) so that its timing
does not share an interpreter (or a GIL) with the load generator. Both print ``ready`` on their
standard output once they can do their job, stop on SIGTERM, and stop by themselves after
``--max-s`` seconds at the latest.

- **reader**: reads a topic from the beginning, outside any consumer group (every partition
  assigned, so there is no group join), and appends one tab-separated line per record to
  ``--out``, flushed after every fetch: ``arrival_ms, kafka_ts_ms, partition, offset, type,
  thread, task_id``. ``arrival_ms`` is this process's wall clock when the fetch that brought the
  record returned: when the task could be seen on the bus by a consumer. ``kafka_ts_ms`` is the
  record's timestamp, which the producer sets (the hub's relay, the baseline pipeline).
- **pipeline**: the baseline, a bare aiokafka pipeline with no state: a consumer in a group
  reads an incident, a producer publishes two task messages for it (keyed by target), awaits
  their acks, then commits the incident's offset. Same loop shape as the hub's engine consumer
  (poll up to 256 records, handle, publish, commit), same client settings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

BASELINE_TARGETS = ("320509", "330421")  # Wujiang, Jiashan: two tasks per incident
MAX_BATCH = 256  # as hub.bus.consumer.ConsumerLoop


def _now_ms() -> float:
    return time.time() * 1000.0


def _stopper() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _ready() -> None:
    sys.stdout.write("ready\n")
    sys.stdout.flush()


async def _partitions(consumer: Any, topic: str, limit_s: float) -> list[TopicPartition]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        with contextlib.suppress(Exception):
            await consumer._client.force_metadata_update()  # aiokafka has no public refresh
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic} has no partitions after {limit_s} s")


def describe(value: bytes) -> tuple[str, str, str]:
    """(type, thread, task id) of a task event; ``?`` for what cannot be read."""
    try:
        event = orjson.loads(value)
        task = event.get("data", {}).get("task", {})
        return str(event.get("type", "?")), str(event.get("correlationid", "?")), str(task["id"])
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
        return "?", "?", "?"


async def reader(args: argparse.Namespace, out: IO[str]) -> None:
    stop = _stopper()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        client_id="bench-reader",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=args.fetch_max_wait_ms,
    )
    await consumer.start()
    deadline = time.monotonic() + args.max_s
    try:
        tps = await _partitions(consumer, args.topic, 30.0)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        first = True
        while not stop.is_set() and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=100)
            arrival = _now_ms()
            lines = []
            for messages in batches.values():
                for m in messages:
                    kind, thread, task = describe(m.value)
                    lines.append(
                        f"{arrival:.3f}\t{m.timestamp}\t{m.partition}\t{m.offset}\t"
                        f"{kind}\t{thread}\t{task}\n"
                    )
            if lines:
                out.write("".join(lines))
                out.flush()
            if first:
                first = False
                _ready()
    finally:
        await consumer.stop()


def task_message(thread: str, target: str) -> bytes:
    return orjson.dumps(
        {
            "type": "task.issued",
            "correlationid": thread,
            "data": {"task": {"id": f"{thread}/{target}", "target": target}},
        }
    )


async def pipeline(args: argparse.Namespace) -> None:
    stop = _stopper()
    consumer = AIOKafkaConsumer(
        args.source,
        bootstrap_servers=args.bootstrap,
        client_id="bench-pipeline",
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=args.fetch_max_wait_ms,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=max(100, args.session_timeout_ms // 3),
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap,
        client_id="bench-pipeline-producer",
        acks="all",
        enable_idempotence=False,
        linger_ms=args.linger_ms,
    )
    await producer.start()
    await consumer.start()
    deadline = time.monotonic() + args.max_s
    announced = False
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=MAX_BATCH)
            if not announced and consumer.assignment():
                announced = True
                _ready()
            if not batches:
                continue
            futures = []
            offsets: dict[TopicPartition, int] = {}
            for tp, messages in batches.items():
                for m in messages:
                    thread = orjson.loads(m.value)["thread"]
                    for target in BASELINE_TARGETS:
                        futures.append(
                            await producer.send(
                                args.sink,
                                task_message(thread, target),
                                key=target.encode(),
                                timestamp_ms=int(_now_ms()),
                            )
                        )
                    offsets[tp] = m.offset + 1
            await asyncio.gather(*futures)
            await consumer.commit(offsets)
    finally:
        await consumer.stop()
        await producer.stop()


# -- the benchmark's side: starting peers and reading what the reader saw -------------------------


class Peer:
    """A peer process (``reader`` or ``pipeline``), stopped by its pid."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.kafka_peers", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parent.parent,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._log.flush()
            if "ready\n" in self.log_path.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"bench peer {self.pid} not ready: {self.tail()}")

    def stop(self) -> int | None:
        from bench.kafka_infra import terminate

        try:
            return terminate(self.process)
        finally:
            self._log.close()

    def tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""


@dataclass
class Seen:
    """What the reader saw on a tasks topic, per task id and per incident thread."""

    first: dict[str, tuple[float, int]] = field(default_factory=dict)  # id -> (arrival, ts)
    records: Counter[str] = field(default_factory=Counter)  # id -> records with this id
    by_thread: dict[str, set[str]] = field(default_factory=dict)  # thread -> task ids
    other: int = 0  # records that are not task.issued

    def last_task(self, thread: str) -> tuple[float, int] | None:
        """(arrival, kafka timestamp) of the thread's task that was seen last."""
        tasks = self.by_thread.get(thread)
        if not tasks:
            return None
        arrivals = [self.first[t] for t in tasks]
        return max(a for a, _ in arrivals), max(ts for _, ts in arrivals)

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.records.values() if n > 1)


class TaskReader:
    """A ``reader`` peer on one topic and what it has written so far."""

    def __init__(self, bootstrap: str, topic: str, workdir: Path, name: str, fetch_ms: int):
        self.out = workdir / f"{name}.tsv"
        self.out.touch()
        self.peer = Peer(
            [
                "reader",
                "--bootstrap",
                bootstrap,
                "--topic",
                topic,
                "--out",
                str(self.out),
                "--fetch-max-wait-ms",
                str(fetch_ms),
            ],
            workdir / f"{name}.log",
        )
        self.seen = Seen()
        self._read = 0  # bytes of ``out`` parsed so far

    def poll(self) -> Seen:
        with self.out.open("rb") as handle:
            handle.seek(self._read)
            chunk = handle.read()
        end = chunk.rfind(b"\n") + 1  # a line being written is parsed next time
        self._read += end
        seen = self.seen
        for line in chunk[:end].decode().splitlines():
            arrival, ts, _part, _offset, kind, thread, task = line.split("\t")
            if kind != "task.issued":
                seen.other += 1
                continue
            seen.records[task] += 1
            if task not in seen.first:
                seen.first[task] = (float(arrival), int(ts))
                seen.by_thread.setdefault(thread, set()).add(task)
        return seen

    async def drain(self, want: Mapping[str, int], limit_s: float) -> bool:
        """Wait until every thread in ``want`` has at least its number of tasks (bounded)."""
        deadline = time.monotonic() + limit_s
        pending = [t for t, n in want.items() if n > 0]
        while True:
            seen = self.poll()
            pending = [t for t in pending if len(seen.by_thread.get(t, ())) < want[t]]
            if not pending:
                return True
            if time.monotonic() > deadline or self.peer.process.poll() is not None:
                return False
            await asyncio.sleep(0.05)

    def stop(self) -> Seen:
        self.peer.stop()
        return self.poll()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka_peers")
    sub = parser.add_subparsers(dest="role", required=True)
    r = sub.add_parser("reader")
    r.add_argument("--topic", required=True)
    r.add_argument("--out", required=True)
    p = sub.add_parser("pipeline")
    p.add_argument("--source", required=True)
    p.add_argument("--sink", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--linger-ms", type=int, required=True)
    p.add_argument("--session-timeout-ms", type=int, required=True)
    for each in (r, p):
        each.add_argument("--bootstrap", required=True)
        each.add_argument("--fetch-max-wait-ms", type=int, required=True)
        each.add_argument("--max-s", type=float, default=900.0)
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.role == "reader":
            out = stack.enter_context(Path(args.out).open("w", encoding="utf-8"))
            work = reader(args, out)
        else:
            work = pipeline(args)
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvicorn[standard] brings it
            asyncio.run(work)
            return
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(work)


if __name__ == "__main__":
    main()
