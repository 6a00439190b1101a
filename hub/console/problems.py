"""Errors as RFC 9457 ``application/problem+json`` responses."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

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
    (InvalidInput, 400, "Invalid input"),
    (Unauthenticated, 401, "Unauthenticated"),
    (NotAllowed, 403, "Not allowed"),
    (NotFound, 404, "Not found"),
    (Conflict, 409, "Conflict"),
    (Unavailable, 503, "Unavailable"),
]


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return Response(orjson.dumps(body), status_code=status, media_type="application/problem+json")


async def _hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    for kind, status, title in _STATUS:
        if isinstance(exc, kind):
            extra: dict[str, Any] = {}
            if isinstance(exc, InvalidIncident):
                extra["errors"] = [{"field": f, "problem": p} for f, p in exc.errors]
            response = problem(status, title, str(exc), **extra)
            if isinstance(exc, Unavailable):
                response.headers["Retry-After"] = "1"
            if isinstance(exc, Unauthenticated):
                response.headers["WWW-Authenticate"] = "Bearer"
            return response
    return problem(500, "Hub error", str(exc))


def install(app: FastAPI) -> None:
    app.add_exception_handler(HubError, _hub_error)
