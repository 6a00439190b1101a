"""A lean HTTP/1.1 load generator for the benchmarks, and the do-nothing baseline server.

The client shares the machine's cores with the server it measures, so it does as little as it
can: persistent keep-alive connections (asyncio ``Protocol``, TCP_NODELAY), requests encoded
once before the clock starts, and responses parsed only as far as the status line, the
``Content-Length`` and the body's end. It talks HTTP/1.1 to servers that answer with
``Content-Length`` (uvicorn with FastAPI ``Response`` objects), one request in flight per
connection. Everything here is bounded: a count of requests and a time limit.
"""

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar, cast

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 64 * 1024


class HttpError(Exception):
    """The server broke the protocol, closed the connection, or took too long."""


def free_port() -> int:
    """A TCP port on the loopback interface that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def encode_post(port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One complete HTTP/1.1 POST request, ready to write to a socket."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {LOOPBACK}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def encode_get(port: int, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {LOOPBACK}:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._closed: BaseException | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is not None and not self._waiter.done():
            self._try_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = exc or HttpError("the server closed the connection")
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._closed)

    # -- use --------------------------------------------------------------------------------
    def request(self, payload: bytes) -> asyncio.Future[tuple[int, bytes]]:
        """Send ``payload``; the future resolves to (status, body)."""
        if self._closed is not None or self._transport is None:
            raise HttpError("the connection is closed")
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._transport.write(payload)
        return self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _try_complete(self) -> None:
        assert self._waiter is not None
        buf = self._buffer
        end = buf.find(_HEAD_END)
        if end < 0:
            if len(buf) > _MAX_HEAD:
                self._waiter.set_exception(HttpError("response head too large"))
            return
        head = bytes(buf[:end])
        try:
            status = int(head[9:12])
        except ValueError:
            self._waiter.set_exception(HttpError(f"bad status line: {head[:40]!r}"))
            return
        length = _content_length(head)
        if length is None:
            self._waiter.set_exception(HttpError("response without Content-Length"))
            return
        total = end + 4 + length
        if len(buf) < total:
            return
        body = bytes(buf[end + 4 : total])
        del buf[:total]
        self._waiter.set_result((status, body))


def _content_length(head: bytes) -> int | None:
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at < 0:
        return 0 if lower.find(b"\r\ntransfer-encoding:") < 0 else None
    stop = lower.find(b"\r\n", at + 2)
    return int(lower[at + 17 : stop if stop >= 0 else len(lower)])


async def connect(port: int, timeout_s: float = 5.0) -> _Connection:
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(
        loop.create_connection(_Connection, LOOPBACK, port), timeout_s
    )
    return protocol


async def request_once(port: int, payload: bytes, timeout_s: float = 10.0) -> tuple[int, bytes]:
    """One request on a fresh connection (setup and checks, not measurements)."""
    conn = await connect(port)
    try:
        return await asyncio.wait_for(conn.request(payload), timeout_s)
    finally:
        conn.close()


@dataclass
class LoadResult:
    """What a load run saw from the client side (times from ``time.perf_counter``)."""

    statuses: list[int]  # per request, 0 when it never got an answer
    sent_at: list[float]  # per request, when it was written (0.0 if never)
    answered_at: list[float]  # per request, when its response was complete (0.0 if never)
    started: float
    finished: float
    errors: list[str] = field(default_factory=list)
    wall_started_ms: float = 0.0  # time.time() at ``started``, in ms: the hub's clock

    @property
    def elapsed_s(self) -> float:
        return self.finished - self.started

    def count(self, status: int) -> int:
        return sum(1 for s in self.statuses if s == status)

    def http_ms(self) -> list[float]:
        """Client-side latencies (write → complete response) of the answered requests."""
        return [
            (a - s) * 1000.0
            for s, a, st in zip(self.sent_at, self.answered_at, self.statuses, strict=True)
            if st
        ]


async def closed_loop(
    port: int, requests: Sequence[bytes], concurrency: int, time_limit_s: float
) -> LoadResult:
    """Post every request as fast as the server answers, ``concurrency`` at a time."""
    n = len(requests)
    statuses = [0] * n
    sent_at = [0.0] * n
    answered_at = [0.0] * n
    errors: list[str] = []
    conns = await asyncio.gather(*(connect(port) for _ in range(min(concurrency, n) or 1)))
    next_index = 0
    clock = time.perf_counter

    async def worker(conn: _Connection) -> None:
        nonlocal next_index
        while next_index < n:
            i = next_index
            next_index += 1
            sent_at[i] = clock()
            try:
                status, _ = await conn.request(requests[i])
            except Exception as exc:  # counted; the worker stops using this connection
                errors.append(f"request {i}: {exc!r}")
                return
            answered_at[i] = clock()
            statuses[i] = status

    wall = time.time() * 1000.0
    started = clock()
    try:
        await _bounded(asyncio.gather(*(worker(c) for c in conns)), time_limit_s, errors)
    finally:
        for conn in conns:
            conn.close()
    return LoadResult(statuses, sent_at, answered_at, started, clock(), errors, wall)


async def open_loop(
    port: int, requests: Sequence[bytes], rate_per_s: float, pool: int, time_limit_s: float
) -> LoadResult:
    """Post request ``i`` at ``start + i / rate`` whatever happened to the earlier ones.

    ``pool`` keep-alive connections carry the requests; should all of them be busy, a request
    waits for one (and its client-side latency shows it).
    """
    n = len(requests)
    statuses = [0] * n
    sent_at = [0.0] * n
    answered_at = [0.0] * n
    errors: list[str] = []
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    conns = await asyncio.gather(*(connect(port) for _ in range(pool)))
    for conn in conns:
        idle.put_nowait(conn)
    clock = time.perf_counter
    loop = asyncio.get_running_loop()
    inflight: set[asyncio.Task[None]] = set()

    async def one(i: int, conn: _Connection) -> None:
        sent_at[i] = clock()
        try:
            status, _ = await conn.request(requests[i])
        except Exception as exc:  # counted; the connection is not reused
            errors.append(f"request {i}: {exc!r}")
            return
        answered_at[i] = clock()
        statuses[i] = status
        idle.put_nowait(conn)

    async def schedule() -> None:
        start_loop = loop.time()
        for i in range(n):
            due = start_loop + i / rate_per_s
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            conn = await idle.get()
            task = asyncio.create_task(one(i, conn))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        if inflight:
            await asyncio.gather(*inflight)

    wall = time.time() * 1000.0
    started = clock()
    try:
        await _bounded(schedule(), time_limit_s, errors)
    finally:
        for task in list(inflight):
            task.cancel()
        for conn in conns:
            conn.close()
    return LoadResult(statuses, sent_at, answered_at, started, clock(), errors, wall)


async def _bounded(work: Any, time_limit_s: float, errors: list[str]) -> None:
    try:
        await asyncio.wait_for(work, time_limit_s)
    except TimeoutError:
        errors.append(f"time limit of {time_limit_s:.0f} s reached")


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` on uvloop when it is installed (a leaner client), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


# -- servers under test ----------------------------------------------------------------------


class Server:
    """A server subprocess on a loopback port, stopped by its pid (TERM, then KILL)."""

    def __init__(self, argv: list[str], port: int, log_path: Path, env: dict[str, str]) -> None:
        self.port = port
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.process = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=Path(__file__).resolve().parent.parent,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_healthy(self, path: str = "/healthz", timeout_s: float = 30.0) -> None:
        """Wait for ``GET path`` to answer 200; raises with the server's output otherwise."""
        deadline = time.monotonic() + timeout_s
        url = f"http://{LOOPBACK}:{self.port}{path}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2.0) as res:
                    if res.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not healthy after {timeout_s:.0f} s: {self.tail()}")

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout_s``."""
        try:
            if self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    os.kill(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=timeout_s)
            return self.process.returncode
        finally:
            self._log.close()

    def tail(self, chars: int = 2000) -> str:
        if not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def baseline_argv(port: int) -> list[str]:
    """The do-nothing server: ``python -c`` running :func:`serve_baseline`."""
    code = f"from bench.loadgen import serve_baseline; serve_baseline({port})"
    return [sys.executable, "-c", code]


def serve_baseline(port: int) -> None:
    """A FastAPI app whose intake reads the body and answers 202, served like the hub.

    (This module does not use ``from __future__ import annotations``: FastAPI needs the
    endpoint's annotations as objects, and they are local names here.)

    Same server settings as ``liandong run`` (uvicorn defaults: uvloop and httptools when
    installed, ``log_level="warning"``, no access log), so the ratio against it isolates
    what the hub's own work costs.
    """
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import Response

    app = FastAPI()

    @app.post("/api/v1/incidents", status_code=202)
    async def intake(request: Request) -> Response:
        await request.body()
        return Response(b"{}", status_code=202, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    config = uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", access_log=False)
    uvicorn.Server(config).run()


def median_of(values: Sequence[Any]) -> float | None:
    """The median of the values that are not None (3 decimals), or None if there are none."""
    numbers = [float(v) for v in values if v is not None]
    return round(statistics.median(numbers), 3) if numbers else None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
