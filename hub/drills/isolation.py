"""Drill isolation as an invariant, checked where events are written, stock is reserved and
tasks are delivered (not by each caller remembering a flag).

- Every emitter (the embedded log, the outbox) passes each event through an ``Isolation``:
  the live one refuses an ``exercise`` event on a live topic; a drill's refuses anything that
  is not an exercise event on an ``exercise.*`` topic, and stamps its drill id on every event.
- The registry refuses an exercise stock request against a live ledger, and a live request
  against a drill's copy (``check_stock_request``).
- An adapter whose tasks are configured ``live_only`` refuses exercise tasks
  (``adapters/framework/task_feed.py``), and every exercise task it delivers is marked 演练.
"""

from __future__ import annotations

import orjson

from hub.bus import topics
from hub.errors import NotAllowed

_STATUS = b'"status":"'
_EXERCISE = b'"status":"exercise"'
_CONTENT_TYPE = b'"datacontenttype":"'
EXERCISE_MARK_ZH = "【演练】"
EXERCISE_MARK_EN = "[EXERCISE] "


class IsolationError(NotAllowed):
    """Exercise traffic tried to cross into live operations, or live into a drill."""


def _status_is_exercise(value: bytes) -> bool:
    """The envelope's own ``status``. Encoded with sorted keys, the top-level ``status`` comes
    after ``data`` and before only string attributes (whose quotes are escaped), so the last
    ``"status":"`` in the bytes is the envelope's."""
    at = value.rfind(_STATUS)
    return at >= 0 and value.startswith(_EXERCISE, at)


class Isolation:
    """The live hub's guard: no exercise event on a live topic."""

    drill: str | None = None

    def check(self, topic: str, value: bytes) -> bytes:
        if _status_is_exercise(value) and not topic.startswith(topics.EXERCISE_PREFIX):
            raise IsolationError(f"an exercise event may not be written to live topic '{topic}'")
        return value


class DrillIsolation(Isolation):
    """A drill hub's guard: only exercise events, only on exercise topics, each stamped with
    the drill id."""

    def __init__(self, drill: str) -> None:
        if not drill:
            raise ValueError("a drill needs an id")
        self.drill = drill
        self._stamp = b',"drill":' + orjson.dumps(drill)

    def check(self, topic: str, value: bytes) -> bytes:
        if not topic.startswith(topics.EXERCISE_PREFIX):
            raise IsolationError(f"drill {self.drill}: refused an event on live topic '{topic}'")
        if _status_is_exercise(value):
            # Sorted keys: ``datacontenttype`` (always present) comes right after ``data`` and
            # right before ``drill``; its last occurrence is the envelope's own.
            at = value.rfind(_CONTENT_TYPE)
            end = value.find(b'"', at + len(_CONTENT_TYPE)) + 1 if at >= 0 else 0
            if end > 0 and value.startswith(b',"id":', end):
                return value[:end] + self._stamp + value[end:]
        envelope = orjson.loads(value)
        if envelope.get("status") != "exercise":
            raise IsolationError(
                f"drill {self.drill}: refused a {envelope.get('status')!r} event "
                f"({envelope.get('type')}) on '{topic}'; a drill writes only exercise events"
            )
        if envelope.get("drill") == self.drill:
            return value
        if envelope.get("drill") is not None:
            raise IsolationError(
                f"drill {self.drill}: refused an event of drill {envelope['drill']!r}"
            )
        envelope["drill"] = self.drill
        return orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS)


LIVE = Isolation()


def check_stock_request(ledger_drill: str | None, request_drill: str | None, depot: str) -> None:
    """A stock request may reserve only on its own ledger: exercise requests (``request_drill``
    set) on a drill's virtual copy of that drill, live requests on the live ledger."""
    if request_drill == ledger_drill:
        return
    if ledger_drill is None:
        raise IsolationError(
            f"drill {request_drill}: refused a reservation on live depot {depot}; "
            "a drill reserves only on its own copy of the registry"
        )
    raise IsolationError(
        f"depot {depot} here is drill {ledger_drill}'s copy; "
        f"a {'live' if request_drill is None else f'drill {request_drill}'} request may not "
        "reserve on it"
    )
