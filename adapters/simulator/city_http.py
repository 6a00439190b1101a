"""A simulated city over HTTP: its task endpoint, and its ``POST``s to the adapter's door.

The task endpoint is a small HTTP/1.1 server on 127.0.0.1 (keep-alive, ``Content-Length``
bodies, which is what the adapter's client sends). It takes ``POST /tasks``, checks the bearer
token the adapter is configured to send, hands the body to the city and answers 200 once the
city has it (422 when the city cannot read it): the adapter's delivery counts a 2xx as the
city's acknowledgement. Incidents and answers go to the adapter's ``/incidents`` and
``/answers`` with the adapter's hub token; a 503 (the hub did not take it yet) is sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable

import httpx

from adapters.simulator.cities import Sent

log = logging.getLogger("adapters.simulator")

__all__ = ["HttpCity"]

Receive = Callable[[bytes], Awaitable[bool]]
RESENDS = 8
RESEND_WAIT_S = 1.0
MAX_BODY = 1 << 20


class HttpCity:
    """One city system's HTTP side."""

    def __init__(
        self,
        adapter_url: str,
        hub_token: str,
        content_type: str,
        *,
        tasks_token: str | None = None,
    ) -> None:
        self.adapter_url = adapter_url.rstrip("/")
        self.content_type = content_type
        self._headers = {"Authorization": f"Bearer {hub_token}", "Content-Type": content_type}
        self._expected = f"Bearer {tasks_token}".encode() if tasks_token else None
        self._client = httpx.AsyncClient(timeout=30.0)
        self._server: asyncio.Server | None = None
        self._receive: Receive | None = None
        self.port = 0

    @property
    def tasks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tasks"

    async def start(self, receive: Receive) -> str:
        """Listen for tasks; returns the endpoint's URL."""
        self._receive = receive
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.tasks_url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        await self._client.aclose()

    # -- up: to the adapter ------------------------------------------------------------------
    async def send_incident(self, raw: bytes, key: str) -> Sent:
        return await self._post("/incidents", raw)

    async def send_answer(self, raw: bytes, key: str) -> Sent:
        return await self._post("/answers", raw)

    async def _post(self, path: str, raw: bytes) -> Sent:
        detail = ""
        for _ in range(RESENDS):
            try:
                res = await self._client.post(
                    self.adapter_url + path, content=raw, headers=self._headers
                )
            except httpx.HTTPError as exc:
                detail = f"{type(exc).__name__}: {exc}"
            else:
                if res.status_code != 503:
                    ok = 200 <= res.status_code < 300
                    return Sent(ok, res.status_code, "" if ok else _detail(res))
                detail = _detail(res)
            await asyncio.sleep(RESEND_WAIT_S)
        return Sent(False, None, detail)

    # -- down: the task endpoint ---------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request, *lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                size = int(headers.get("content-length", "0") or 0)
                if size > MAX_BODY:
                    await _respond(writer, 413, b"too large")
                    return
                body = await reader.readexactly(size)
                status = await self._handle(request, headers, body)
                await _respond(writer, status, b"{}" if status == 200 else b'{"error": true}')
                if headers.get("connection", "").lower() == "close":
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            return
        finally:
            writer.close()

    async def _handle(self, request: str, headers: dict[str, str], body: bytes) -> int:
        method, _, rest = request.partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        if method != "POST" or path.rstrip("/") != "/tasks":
            return 404
        given = headers.get("authorization", "").encode()
        if self._expected is not None and not hmac.compare_digest(given, self._expected):
            return 401
        assert self._receive is not None
        return 200 if await self._receive(body) else 422


def _detail(res: httpx.Response) -> str:
    try:
        return str(res.json().get("detail") or res.text[:200])
    except ValueError:
        return res.text[:200]


async def _respond(writer: asyncio.StreamWriter, status: int, body: bytes) -> None:
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 413: "Too Large"}.get(
        status, "Unprocessable"
    )
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
