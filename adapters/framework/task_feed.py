"""Down: the hub's tasks for one jurisdiction → a sink (HTTP POST, the city's Kafka topic).

:class:`TaskFeed` asks the hub every ``poll_interval_s`` for the tasks addressed to its
jurisdiction that have no answer yet (``GET /api/v1/tasks?target=CODE&state=issued&...``,
oldest first; for a city's system, those of the city and of each of its districts, which a
city credential answers for) and hands each one it has not delivered to the sink, in order.
A task is delivered once per process: the sink's success is the city's own acknowledgement (a 2xx, a
record stored on the city's cluster), so it is not sent again unless it changes. When a
delivered task leaves the list because it was cancelled, the cancellation is delivered too.

At-least-once: the feed keeps what it delivered in memory only, so after a restart every open
task goes again; the city deduplicates on the message key (:func:`message_key`). A delivery
round that fails stops the round (the destination is failing; the next tasks would fail too)
and the next poll starts again from the oldest undelivered task. A message the city refuses
(4xx) is tried again after ``refused_retry_s``, in case the city's side was fixed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from adapters.links.exercise import mark_exercise
from adapters.links.hub_api import MAX_TASKS, HubApi
from hub.errors import InvalidInput

log = logging.getLogger(__name__)

__all__ = ["FIRST_STATES", "Delivery", "Sink", "TaskFeed", "message_key"]

# A task in one of these states goes to the city as the task itself; a later state (cancelled)
# is a change of a task already sent, with a key of its own.
FIRST_STATES = frozenset({"issued", "delivered", "escalated"})
CHANGES_SENT = frozenset({"cancelled"})


def message_key(task: dict[str, Any]) -> str:
    """What a city deduplicates on: the task id; for a change, ``{task id}.{state}``."""
    state = str(task.get("state", "issued"))
    return str(task["id"]) if state in FIRST_STATES else f"{task['id']}.{state}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one delivery round of one task."""

    delivered: bool
    status: int | None  # the destination's last status (HTTP), None when there is none
    detail: str
    attempts: int
    refused: bool = False  # the city refused this message as it is (HTTP 4xx)


class Sink(Protocol):
    async def deliver(self, task: dict[str, Any]) -> Delivery: ...


class TaskFeed:
    """Keeps a city supplied with its tasks."""

    def __init__(
        self,
        api: HubApi,
        token: str,
        jurisdiction: str,
        sink: Sink,
        *,
        poll_interval_s: float = 1.0,
        refused_retry_s: float = 300.0,
        targets: Sequence[str] = (),
        live_only: bool = False,
    ) -> None:
        self.api = api
        # A city endpoint for live operations only: exercise tasks are never sent to it.
        self.live_only = live_only
        self.jurisdiction = jurisdiction
        # Whose tasks are listed: the jurisdiction, or (a city's system) the city and its
        # districts, whose tasks a city credential answers too.
        self.targets = tuple(targets) or (jurisdiction,)
        self.sink = sink
        self.poll_interval_s = poll_interval_s
        self.refused_retry_s = refused_retry_s
        self.sent: dict[str, str] = {}  # task id -> the key of the last message delivered
        self.stats: Counter[str] = Counter()
        self._token = token
        self._parked: dict[str, float] = {}  # refused by the city: task id -> when to try again
        self._poll_failing = False

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            await self.sync()
            await asyncio.sleep(self.poll_interval_s)

    async def sync(self) -> None:
        """One round: deliver what is new, then the cancellations of what was delivered."""
        outcome, tasks = await self.api.open_tasks_for(self._token, self.targets)
        if not outcome.ok:
            self.stats["polls_failed"] += 1
            if not self._poll_failing:  # once per outage, not once per poll
                log.warning(
                    "cannot list the tasks of %s: %s %s",
                    self.jurisdiction,
                    outcome.status,
                    outcome.detail(),
                )
            self._poll_failing = True
            return
        if self._poll_failing:
            log.info("the tasks of %s can be listed again", self.jurisdiction)
            self._poll_failing = False
        listed = {str(t["id"]) for t in tasks}
        for task in tasks:
            if self.sent.get(str(task["id"])) is not None:
                continue  # the city has it; an escalation is the hub's business, not news
            if not await self._deliver(task):
                return
        if len(tasks) >= MAX_TASKS:
            return  # a full page may have left open tasks out: nothing unlisted counts as gone
        for task_id in [t for t in self.sent if t not in listed]:
            if not await self._gone(task_id):
                return

    async def _deliver(self, task: dict[str, Any]) -> bool:
        """Deliver one message; False when the round should stop (the destination fails)."""
        task_id = str(task["id"])
        now = time.monotonic()
        if self._parked.get(task_id, now) > now:
            return True
        if task.get("lane") == "exercise":
            if self.live_only:  # the isolation guard: no exercise task reaches a live-only city
                self.sent[task_id] = message_key(task)
                self.stats["exercise_refused"] += 1
                log.error("exercise task %s not sent: %s is live-only", task_id, self.jurisdiction)
                return True
            task = mark_exercise(task)
        try:
            result = await self.sink.deliver(task)
        except InvalidInput as exc:  # the codec cannot write this task for the city
            result = Delivery(False, None, f"cannot encode: {exc}", 0, refused=True)
        if result.delivered:
            self.sent[task_id] = message_key(task)
            self._parked.pop(task_id, None)
            self.stats["delivered"] += 1
            return True
        if result.refused:
            self._parked[task_id] = now + self.refused_retry_s
            self.stats["refused_by_city"] += 1
            log.error(
                "city of %s refused task %s (%s): %s; trying again in %.0f s",
                self.jurisdiction,
                task_id,
                result.status,
                result.detail,
                self.refused_retry_s,
            )
            return True
        self.stats["delivery_rounds_failed"] += 1
        log.warning(
            "task %s not delivered to %s after %d attempts (%s %s); next round later",
            task_id,
            self.jurisdiction,
            result.attempts,
            result.status,
            result.detail,
        )
        return False

    async def _gone(self, task_id: str) -> bool:
        """A delivered task left the open list: tell the city if it was cancelled."""
        outcome, task = await self.api.task(self._token, task_id)
        if not outcome.ok or task is None:
            if outcome.retry:
                return False  # ask again next round
            del self.sent[task_id]
            return True
        if str(task.get("state")) in CHANGES_SENT and self.sent[task_id] != message_key(task):
            if not await self._deliver(task):
                return False
            if self.sent.get(task_id) != message_key(task):
                return True  # parked (refused): keep it, try again later
        del self.sent[task_id]
        return True
