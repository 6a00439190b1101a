"""What a transport refused before it became an event, kept on the dead-letter topic.

A city system that sends malformed JSON, invalid CAP, a media type the hub cannot read or an
oversize body gets a clear error (4xx naming the problem); the bytes it sent are kept as an
``event.deadlettered`` with the reason, so an integrator can see afterwards exactly what arrived.
Only authenticated senders' messages are kept (an anonymous caller cannot fill the store), at
most ``KEPT_BYTES`` of each, and the same bytes from the same adapter are recorded once however
often they are resent.
"""

from __future__ import annotations

import hashlib

from hub.bus import topics
from hub.clock import Clock
from hub.model.envelope import Lane, derived_id, format_time
from hub.model.events import EventDeadLettered, make_event
from hub.store.adapters import AdapterCredential
from hub.store.db import Runner, Tx
from hub.store.outbox import Emitter, first_emission

KEPT_BYTES = 64 * 1024


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.hex()


class IntakeDeadLetters:
    """Records refused inbound messages on ``liandong.deadletter.v1``."""

    def __init__(self, db: Runner, emitter: Emitter, clock: Clock) -> None:
        self._db = db
        self._emitter = emitter
        self._clock = clock

    async def record(
        self,
        credential: AdapterCredential,
        *,
        route: str,
        media_type: str | None,
        body: bytes,
        size: int,
        reason: str,
    ) -> bool:
        """Keep ``body`` (its first ``KEPT_BYTES``) with ``reason``; True when it was new."""
        kept = body[:KEPT_BYTES]
        digest = hashlib.sha256(body).hexdigest()
        event_id = derived_id("intake.deadlettered", credential.name, route, str(size), digest)
        now = self._clock.now_ms()
        payload = EventDeadLettered(
            topic=route,
            key=credential.jurisdiction,
            reason=reason,
            payload=_text(kept),
            adapter=credential.name,
            media_type=media_type,
            size=size,
            kept=len(kept),
        )
        envelope = make_event(
            "event.deadlettered",
            payload,
            id=event_id,
            source=f"/liandong/adapters/{credential.name}",
            time=format_time(now),
            jurisdiction=credential.jurisdiction,
            correlationid=digest,
        )
        topic = topics.for_lane(topics.DEADLETTER, Lane.ACTUAL)

        def write(tx: Tx) -> bool:
            if not first_emission(tx.conn, event_id):
                return False
            self._emitter.append(tx, topic, credential.jurisdiction, envelope.encode(), now)
            return True

        return await self._db.run(write)
