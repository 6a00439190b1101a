"""Up by HTTP: the door where a city system ``POST``s its native messages to its adapter.

Routes (each ``POST`` needs ``Authorization: Bearer TOKEN`` with the adapter's own hub token,
the credential ``liandong adapters add`` printed for it):

- ``POST /incidents``: an incident (a CAP codec also takes answers here: an Ack or Error that
  references a task is one);
- ``POST /answers``: an answer to a task (acknowledged, accepted, declined, done, with the
  city's reason text);
- ``GET /healthz``: 200 while the adapter runs.

The city gets the hub's own answer (202 for an incident taken, also for a resend; 200 for an
answer; 403, 409, 422 with a problem+json ``detail`` when refused for good), a 422 naming the
line or field when the codec cannot read the message, 401 without the right token, 413 for a
body over ``max_body_bytes``, and 503 with ``Retry-After`` when the hub did not answer within
``patience_s`` (send it again later: a resend is harmless).

The server is uvicorn running a plain ASGI callable; the runner owns signals, so uvicorn's
signal capture is switched off.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import orjson
import uvicorn

from adapters.framework.codec import Channel
from adapters.framework.manifest import HttpListen
from adapters.framework.upstream import Upstream
from hub.errors import Unavailable

log = logging.getLogger(__name__)

__all__ = ["Listener"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ROUTES: dict[str, Channel] = {"/incidents": "incidents", "/answers": "answers"}
PROBLEM = "application/problem+json"


class _TooLarge(Exception):
    pass


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the runner decides when to stop


class Listener:
    """The adapter's HTTP door for one city system."""

    def __init__(
        self, settings: HttpListen, upstream: Upstream, token: str, *, patience_s: float = 10.0
    ) -> None:
        self.settings = settings
        self.upstream = upstream
        self.patience_s = patience_s
        self._expected = f"Bearer {token}".encode()
        config = uvicorn.Config(
            self.app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            timeout_keep_alive=75,
        )
        self._server = _QuietServer(config)

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    async def serve(self) -> None:
        """Listen until cancelled (or :meth:`stop`)."""
        try:
            await self._server.serve()
        except SystemExit:  # uvicorn's answer to a port it cannot bind
            where = f"{self.settings.host}:{self.settings.port}"
            raise Unavailable(f"cannot listen on {where} (see the log above)") from None
        finally:
            self._server.should_exit = True

    def stop(self) -> None:
        self._server.should_exit = True

    # -- ASGI ------------------------------------------------------------------------------------
    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"].rstrip("/") or "/"
        if path == "/healthz" and method in ("GET", "HEAD"):
            await _reply(send, 200, {"ok": True})
            return
        channel = ROUTES.get(path)
        if channel is None:
            await _problem(send, 404, f"no route {path}: POST /incidents or /answers")
            return
        if method != "POST":
            await _problem(send, 405, f"{path} takes POST", [(b"allow", b"POST")])
            return
        headers = dict(scope["headers"])
        if not hmac.compare_digest(headers.get(b"authorization", b""), self._expected):
            await _problem(
                send,
                401,
                "Authorization: Bearer TOKEN (the adapter's token) expected",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        try:
            body = await _body(receive, self.settings.max_body_bytes)
        except _TooLarge:
            limit = self.settings.max_body_bytes
            await _problem(send, 413, f"body over {limit} bytes")
            return
        result = await self.upstream.forward(body, channel, patience_s=self.patience_s)
        if not result.settled:
            await _problem(
                send,
                503,
                f"the hub did not take it yet ({result.detail}); send it again",
                [(b"retry-after", b"5")],
            )
            return
        status = result.status or 502
        if result.ok:
            await _send(send, status, result.body or b"{}", "application/json")
        else:
            await _problem(send, status, result.detail)


async def _body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _reply(
    send: Send,
    status: int,
    data: Any,
    extra: list[tuple[bytes, bytes]] | None = None,
    content_type: str = "application/json",
) -> None:
    await _send(send, status, orjson.dumps(data), content_type, extra)


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})


async def _problem(
    send: Send, status: int, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = {"type": "about:blank", "status": status, "detail": detail}
    await _reply(send, status, data, extra, PROBLEM)
