"""The hub's HTTP API as a link uses it: one adapter token per jurisdiction it speaks for.

Every call returns an :class:`Outcome` instead of raising: the link decides from ``retry``
whether to try again (the hub is unreachable, overloaded, or does not know the token -- perhaps
not yet) or to give up on the message (the hub refused it for good: 403, 404, 409, 422...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from adapters.links.hub_http import HttpFailure, HttpPool
from adapters.links.mqtt_protocol import TaskAnswer

OPEN_TASK_STATES = ("issued", "delivered", "escalated")  # no answer from the target yet
RETRY_STATUSES = frozenset({401, 408, 425, 429, 500, 502, 503, 504})
MAX_TASKS = 5000  # the API's largest page


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None  # None: no HTTP answer (connection refused, timeout)
    body: bytes = b""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retry(self) -> bool:
        return self.status is None or self.status in RETRY_STATUSES

    def detail(self) -> str:
        if self.error:
            return self.error
        try:
            problem = orjson.loads(self.body)
            return str(problem.get("detail") or problem.get("title") or problem)
        except (orjson.JSONDecodeError, AttributeError):
            return self.body[:300].decode(errors="replace")


class HubApi:
    def __init__(self, base_url: str, *, timeout_s: float = 10.0, connections: int = 32) -> None:
        self._http = HttpPool(base_url, size=connections, timeout_s=timeout_s)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        token: str,
        *,
        content: bytes | None = None,
        params: list[tuple[str, str]] | None = None,
    ) -> Outcome:
        headers = {"Authorization": f"Bearer {token}"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            res = await self._http.request(
                method, path, body=content, params=params, headers=headers
            )
        except HttpFailure as exc:
            return Outcome(None, error=str(exc))
        return Outcome(res.status, res.body)

    async def report_incident(self, token: str, incident: bytes) -> Outcome:
        """``POST /api/v1/incidents`` (202 accepted, also for a resend of the same message)."""
        return await self._call("POST", "/api/v1/incidents", token, content=incident)

    async def answer_task(self, token: str, answer: TaskAnswer) -> Outcome:
        """``POST /api/v1/tasks/{id}/{answer}`` (200; the same answer again is answered 200)."""
        body = orjson.dumps({"reason": answer.reason}) if answer.reason else None
        return await self._call(
            "POST", f"/api/v1/tasks/{answer.task}/{answer.answer.value}", token, content=body
        )

    async def open_tasks(self, token: str, target: str) -> tuple[Outcome, list[dict[str, Any]]]:
        """Tasks addressed to ``target`` that it has not answered yet, oldest first."""
        params = [("target", target), ("limit", str(MAX_TASKS))]
        params += [("state", s) for s in OPEN_TASK_STATES]
        outcome = await self._call("GET", "/api/v1/tasks", token, params=params)
        if not outcome.ok:
            return outcome, []
        tasks: list[dict[str, Any]] = orjson.loads(outcome.body)["tasks"]
        tasks.sort(key=lambda t: (str(t.get("issued", "")), str(t.get("id", ""))))
        return outcome, tasks

    async def open_tasks_for(
        self, token: str, targets: Sequence[str]
    ) -> tuple[Outcome, list[dict[str, Any]]]:
        """:meth:`open_tasks` of several targets together (a city's command centre answers for
        the city and its districts: ``hub.model.region.speaks_for``), oldest first. The first
        failed listing fails the whole call; a full page of any target makes the result at least
        ``MAX_TASKS`` long, so callers that check for a full page still see it."""
        if len(targets) == 1:
            return await self.open_tasks(token, targets[0])
        listed = await asyncio.gather(*(self.open_tasks(token, target) for target in targets))
        failed = next((outcome for outcome, _ in listed if not outcome.ok), None)
        if failed is not None:
            return failed, []
        tasks = [task for _, found in listed for task in found]
        tasks.sort(key=lambda t: (str(t.get("issued", "")), str(t.get("id", ""))))
        return listed[0][0], tasks

    async def task(self, token: str, task_id: str) -> tuple[Outcome, dict[str, Any] | None]:
        outcome = await self._call("GET", f"/api/v1/tasks/{task_id}", token)
        found: dict[str, Any] | None = orjson.loads(outcome.body) if outcome.ok else None
        return outcome, found

    async def report_refusal(self, token: str, report: dict[str, Any]) -> Outcome:
        """``POST /api/v1/audit/refusals`` (requested from the hub: mqtt_refusals.py)."""
        return await self._call(
            "POST", "/api/v1/audit/refusals", token, content=orjson.dumps(report)
        )

    async def report_unreadable(self, token: str, report: dict[str, Any]) -> Outcome:
        """``POST /api/v1/audit/unreadable``: a city message the adapter's codec refused, kept
        by the hub on the dead-letter topic with the reason."""
        return await self._call(
            "POST", "/api/v1/audit/unreadable", token, content=orjson.dumps(report)
        )
