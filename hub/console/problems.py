"""Errors as RFC 9457 ``application/problem+json`` responses."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from hub.codecs.cap import CapError
from hub.errors import (
    Conflict,
    HubError,
    InvalidInput,
    NotAllowed,
    NotFound,
    Unauthenticated,
    Unavailable,
)
from hub.intake.service import InvalidIncident

_STATUS: list[tuple[type[HubError], int, str]] = [
    (InvalidIncident, 422, "Invalid incident"),
    (CapError, 422, "Invalid CAP message"),
    (InvalidInput, 400, "Invalid input"),
    (Unauthenticated, 401, "Unauthenticated"),
    (NotAllowed, 403, "Not allowed"),
    (NotFound, 404, "Not found"),
    (Conflict, 409, "Conflict"),
    (Unavailable, 503, "Unavailable"),
]


def problem_body(status: int, title: str, detail: str, **extra: Any) -> bytes:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return orjson.dumps(body)


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    return Response(
        problem_body(status, title, detail, **extra),
        status_code=status,
        media_type="application/problem+json",
    )


def problem_parts(exc: HubError) -> tuple[int, dict[str, str], bytes]:
    """Status, extra headers and problem+json body for a hub error (framework-neutral)."""
    for kind, status, title in _STATUS:
        if isinstance(exc, kind):
            extra: dict[str, Any] = {}
            if isinstance(exc, InvalidIncident):
                extra["errors"] = [{"field": f, "problem": p} for f, p in exc.errors]
            if isinstance(exc, CapError):
                where = f"line {exc.line}: {exc.element}" if exc.line else (exc.element or "")
                extra["errors"] = [{"field": where or "(message)", "problem": exc.problem}]
            headers = {}
            if isinstance(exc, Unavailable):
                headers["Retry-After"] = "1"
            if isinstance(exc, Unauthenticated):
                headers["WWW-Authenticate"] = "Bearer"
            return status, headers, problem_body(status, title, str(exc), **extra)
    return 500, {}, problem_body(500, "Hub error", str(exc))


async def _hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    status, headers, body = problem_parts(exc)
    return Response(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(HubError, _hub_error)
