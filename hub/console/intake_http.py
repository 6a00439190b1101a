"""The intake over HTTP, framework-neutral, and the lean ASGI front door that serves it.

``POST /api/v1/incidents`` is the route every city system calls for every message; FastAPI's
middleware and dependency machinery cost more than the intake itself, so the front door
answers that one route directly and passes everything else to the FastAPI app.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI

from hub.codecs.cap import decode_cap
from hub.codecs.edxl_de import decode_edxl_de, looks_like_edxl_de
from hub.console.auth import TokenCache, authenticate
from hub.console.problems import problem_body, problem_parts
from hub.errors import HubError, InvalidInput
from hub.intake.deadletters import KEPT_BYTES
from hub.intake.service import Receipt, parse_incident
from hub.model.incident import Incident, lane_for
from hub.runtime import Hub
from hub.store.adapters import AdapterCredential

log = logging.getLogger(__name__)

PATH = "/api/v1/incidents"
JSON_TYPES = ("application/json", "application/cap+json")
XML_TYPES = ("application/cap+xml", "application/xml", "text/xml")
PROBLEM = "application/problem+json"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _problem(status: int, title: str, detail: str) -> Answer:
    return Answer(status, problem_body(status, title, detail), PROBLEM)


def media_of(content_type: str | None) -> str:
    return (content_type or "application/json").split(";")[0].strip().lower()


def check_media(content_type: str | None) -> Answer | None:
    """A 415 answer for a body the intake cannot read, else None."""
    media = media_of(content_type)
    if media not in JSON_TYPES and media not in XML_TYPES:
        return _problem(
            415,
            "Unsupported media type",
            f"'{media}' is not accepted; send CAP 1.2 as JSON (application/json) "
            "or as XML (application/cap+xml)",
        )
    return None


def too_large(size: int, limit: int) -> Answer:
    return _problem(413, "Too large", f"body of {size} bytes or more exceeds {limit}")


def decode_body(body: bytes, content_type: str | None, limit: int) -> tuple[list[Incident], str]:
    """The incidents a body carries, and what it was: one CAP alert (XML or canonical JSON), or
    the alerts of an EDXL-DE envelope (``edxl``), whose distribution status the decoder has
    checked against each alert's status."""
    if media_of(content_type) not in XML_TYPES:
        return [parse_incident(body)], "json"
    if looks_like_edxl_de(body):
        distribution = decode_edxl_de(body, max_bytes=limit)
        if not distribution.incidents:
            raise InvalidInput("the EDXL-DE envelope carries no CAP alert")
        return list(distribution.incidents), "edxl"
    return [decode_cap(body, max_bytes=limit)], "cap"


async def report(
    hub: Hub, tokens: TokenCache, content_type: str | None, authorization: str | None, body: bytes
) -> Answer:
    """Everything the intake route does, from headers and body to the answer."""
    try:
        adapter = await authenticate(hub, tokens, authorization)
        refused = check_media(content_type)
        if refused is None and len(body) > hub.settings.max_body_bytes:
            refused = too_large(len(body), hub.settings.max_body_bytes)
        if refused is not None:
            await deadletter(hub, adapter, content_type, body, len(body), refused)
            return refused
        try:
            incidents, kind = decode_body(body, content_type, hub.settings.max_body_bytes)
            receipts = [await hub.intake.report(incident, adapter) for incident in incidents]
        except InvalidInput as exc:
            hub.metrics.incidents_refused.labels("invalid").inc()
            status, headers, problem = problem_parts(exc)
            answer = Answer(status, problem, PROBLEM, headers)
            await deadletter(hub, adapter, content_type, body, len(body), answer)
            return answer
    except HubError as exc:
        status, headers, problem = problem_parts(exc)
        return Answer(status, problem, PROBLEM, headers)
    for incident, receipt in zip(incidents, receipts, strict=True):
        if not receipt.duplicate:
            hub.metrics.incidents_accepted.labels(lane_for(incident.status).value).inc()
    first = receipts[0]
    headers = {"Location": f"{PATH}/{first.identifier}?sender={first.sender}"}
    if all(receipt.duplicate for receipt in receipts):
        headers["Liandong-Duplicate"] = "true"
    if kind == "edxl":
        content = orjson.dumps({"receipts": [_receipt_json(r) for r in receipts]})
    else:
        content = orjson.dumps(_receipt_json(first))
    return Answer(202, content, headers=headers)


def _receipt_json(receipt: Receipt) -> dict[str, Any]:
    return {
        "identifier": receipt.identifier,
        "sender": receipt.sender,
        "thread": receipt.thread,
        "version": receipt.version,
        "event": receipt.event,
        "received": receipt.received,
    }


async def deadletter(
    hub: Hub,
    adapter: AdapterCredential,
    content_type: str | None,
    body: bytes,
    size: int,
    answer: Answer,
) -> None:
    """Keep what an adapter sent that the intake refused, with the answer's reason.

    The adapter gets its 4xx whatever happens here: a dead-letter store that is away costs a
    warning in the log, not the answer."""
    try:
        problem = orjson.loads(answer.body)
        reason = f"{answer.status} {problem.get('title', '')}: {problem.get('detail', '')}"
        if problem.get("errors"):
            reason += f" {orjson.dumps(problem['errors']).decode()}"
        await hub.deadletters.record(
            adapter,
            route=f"POST {PATH}",
            media_type=media_of(content_type),
            body=body,
            size=size,
            reason=reason,
        )
    except HubError as exc:
        log.warning("could not keep a refused message of adapter %s: %s", adapter.name, exc)


async def refuse_oversize(
    hub: Hub, tokens: TokenCache, headers: dict[str, str], head: bytes, size: int
) -> Answer:
    """The 413 for a body that went over the limit while it arrived; its start is kept."""
    answer = too_large(size, hub.settings.max_body_bytes)
    try:
        adapter = await authenticate(hub, tokens, headers.get("authorization"))
    except HubError as exc:
        status, extra, problem = problem_parts(exc)
        return Answer(status, problem, PROBLEM, extra)
    await deadletter(hub, adapter, headers.get("content-type"), head, size, answer)
    return answer


class FrontDoor:
    """ASGI app: the intake route directly, everything else (and lifespan) to FastAPI."""

    def __init__(self, api: FastAPI) -> None:
        self.api = api
        self.state = api.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == PATH:
            await self._intake(scope, receive, send)
        else:
            await self.api(scope, receive, send)

    async def _intake(self, scope: Scope, receive: Receive, send: Send) -> None:
        hub: Hub = self.state.hub
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = hub.settings.max_body_bytes
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                head = b"".join(chunks)[:KEPT_BYTES]
                answer = await refuse_oversize(hub, self.state.tokens, headers, head, size)
                await _send(send, answer)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        try:
            answer = await report(
                hub,
                self.state.tokens,
                headers.get("content-type"),
                headers.get("authorization"),
                b"".join(chunks),
            )
        except Exception:  # the request boundary: answer 500, keep serving
            log.exception("intake failed")
            answer = _problem(500, "Internal error", "the hub could not process this message")
        await _send(send, answer)


async def _send(send: Send, answer: Answer) -> None:
    headers = [
        (b"content-type", answer.media_type.encode()),
        (b"content-length", str(len(answer.body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in answer.headers.items()]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
