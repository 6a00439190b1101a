"""The intake: turns a posted canonical incident into a stored version and an
``incident.reported`` event, in one transaction, exactly once per sender and identifier."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.bus import topics
from hub.clock import Clock
from hub.errors import Conflict, InvalidInput, NotAllowed
from hub.model.envelope import derived_id, format_time
from hub.model.events import IncidentReported, IntakeRefused, make_event
from hub.model.incident import Incident, MsgType, lane_for
from hub.model.region import speaks_for
from hub.region import Region
from hub.store import incidents as store
from hub.store.adapters import AdapterCredential
from hub.store.db import Runner, Tx
from hub.store.outbox import Emitter, first_emission
from hub.store.sql import pipeline


class Refusal(BaseModel):
    """A transport's report of something it refused for a credential (e.g. MQTT ACL denial)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=100, description="the reporter's id for it")
    transport: Literal["mqtt"]
    credential: str = Field(description="jurisdiction of the refused credential")
    client_id: str
    topic: str
    jurisdiction_claimed: str | None = None
    reason: str
    observed: str = Field(description="when the transport saw it")


class InvalidIncident(InvalidInput):
    """An incident that fails validation; ``errors`` lists (field, problem) pairs."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{f}: {p}" for f, p in errors))


@dataclass(frozen=True, slots=True)
class Receipt:
    """The intake's answer; a resend of the same message gets the same receipt."""

    identifier: str
    sender: str
    thread: str
    version: int
    event: str
    received: str
    duplicate: bool


def parse_incident(body: bytes) -> Incident:
    try:
        return Incident.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidIncident([_field_error(e) for e in exc.errors()]) from None


def _field_error(err: object) -> tuple[str, str]:
    assert isinstance(err, dict)
    path = ""
    for part in err["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(body)", str(err["msg"])


@dataclass(frozen=True, slots=True)
class _Rendered:
    """An incident rendered once: JSON-ready data, canonical bytes, and their digest."""

    data: dict[str, Any]
    body: bytes
    digest: str


def _render(incident: Incident) -> _Rendered:
    data = incident.model_dump(mode="json", exclude_none=True)
    body = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    return _Rendered(data, body, hashlib.sha256(body).hexdigest())


class IntakeService:
    def __init__(self, db: Runner, emitter: Emitter, clock: Clock, region: Region) -> None:
        self._db = db
        self._emitter = emitter
        self._clock = clock
        self._region = region

    async def report(self, incident: Incident, credential: AdapterCredential) -> Receipt:
        if not speaks_for(credential.jurisdiction, incident.sender):
            await self._refuse(credential, incident)
            raise NotAllowed(
                f"adapter '{credential.name}' speaks for {credential.jurisdiction}, "
                f"not for sender {incident.sender}"
            )
        if not self._region.is_known(incident.sender):
            raise InvalidIncident(
                [("sender", f"'{incident.sender}' is not a jurisdiction of the region")]
            )
        rendered = _render(incident)
        return await self._db.run(lambda tx: self.accept_in(tx, incident, credential, rendered))

    def accept_in(
        self,
        tx: Tx,
        incident: Incident,
        credential: AdapterCredential,
        rendered: _Rendered | None = None,
    ) -> Receipt:
        """``report``'s transaction, inside the caller's (a drill's step): the credential and
        the sender are the caller's to have checked. ``rendered``: the incident's canonical
        bytes if the caller made them outside the transaction."""
        if rendered is None:
            rendered = _render(incident)
        # An Alert is its own thread: both reads go in one round trip (``sql.pipeline``).
        own = incident.msgType is MsgType.ALERT or not incident.references
        with pipeline(tx.conn):
            read_existing = store.read_incident(tx.conn, incident.sender, incident.identifier)
            read_version = store.read_next_version(tx.conn, incident.key) if own else None
        existing = read_existing()
        version = read_version() if read_version is not None else 0
        if existing is not None:
            if existing.digest != rendered.digest:
                raise Conflict(
                    f"identifier '{incident.identifier}' from sender {incident.sender} was already "
                    "received with different content; a changed report needs a new identifier "
                    "(msgType Update with references)"
                )
            return _receipt(existing, duplicate=True)
        thread = incident.key if own else self._thread_of(tx, incident)
        if not own:
            version = store.next_version(tx.conn, thread)
        now = self._clock.now_ms()
        lane = lane_for(incident.status)
        event_id = derived_id("incident.reported", incident.key)
        received = format_time(now)
        payload = IncidentReported(
            incident=incident, thread=thread, version=version, received=received
        )
        data = {
            "incident": rendered.data,
            "thread": thread,
            "version": version,
            "received": received,
        }
        envelope = make_event(
            "incident.reported",
            payload,
            id=event_id,
            source=f"/liandong/adapters/{credential.name}",
            time=received,
            jurisdiction=incident.sender,
            correlationid=thread,
            status=lane,
            subject=incident.key,
            data=data,
        )
        row = store.StoredIncident(
            incident.sender,
            incident.identifier,
            thread,
            version,
            incident.msgType.value,
            incident.status.value,
            incident.sent,
            rendered.digest,
            now,
            event_id,
            rendered.body,
        )
        with pipeline(tx.conn):
            store.insert_incident(tx.conn, row)
            topic = topics.for_lane(topics.INCIDENTS, lane)
            self._emitter.append_many(tx, [(topic, thread, envelope.encode(), now)])
        return _receipt(row, duplicate=False)

    @staticmethod
    def _thread_of(tx: Tx, incident: Incident) -> str:
        if incident.msgType is MsgType.ALERT or not incident.references:
            return incident.key
        refs = incident.referenced()
        for ref in refs:
            found = store.get_incident(tx.conn, ref.sender, ref.identifier)
            if found is not None:
                return found.thread
        # It refers to messages we never received: the earliest reference still names the thread.
        return f"{refs[0].sender},{refs[0].identifier}"

    async def record_refusal(self, credential: AdapterCredential, refusal: Refusal) -> bool:
        """Record a refusal a transport observed (an ACL-denied MQTT publish); True when it was
        new. The same report sent again (same ``refusal.id``) is recorded once."""
        now = self._clock.now_ms()
        event_id = derived_id(refusal.id, "intake.refused")
        payload = IntakeRefused(
            adapter=credential.name,
            credential_jurisdiction=credential.jurisdiction,
            claimed=refusal.jurisdiction_claimed,
            reason=f"{refusal.reason} (client {refusal.client_id}, seen {refusal.observed})",
            transport=refusal.transport,
            topic=refusal.topic,
        )
        envelope = make_event(
            "intake.refused",
            payload,
            id=event_id,
            source=f"/liandong/adapters/{credential.name}",
            time=format_time(now),
            jurisdiction=credential.jurisdiction,
            correlationid=refusal.id,
        )

        def write(tx: Tx) -> bool:
            if not first_emission(tx.conn, event_id):
                return False
            self._emitter.append(tx, topics.AUDIT, credential.jurisdiction, envelope.encode(), now)
            return True

        return await self._db.run(write)

    async def _refuse(self, credential: AdapterCredential, incident: Incident) -> None:
        now = self._clock.now_ms()
        payload = IntakeRefused(
            adapter=credential.name,
            credential_jurisdiction=credential.jurisdiction,
            claimed=incident.sender,
            identifier=incident.identifier,
            reason="sender does not match the adapter's jurisdiction",
        )
        envelope = make_event(
            "intake.refused",
            payload,
            id=derived_id("intake.refused", credential.name, incident.key, str(now)),
            source=f"/liandong/adapters/{credential.name}",
            time=format_time(now),
            jurisdiction=credential.jurisdiction,
            correlationid=incident.key,
        )

        def write(tx: Tx) -> None:
            self._emitter.append(tx, topics.AUDIT, credential.jurisdiction, envelope.encode(), now)

        await self._db.run(write)


def _receipt(row: store.StoredIncident, duplicate: bool) -> Receipt:
    return Receipt(
        identifier=row.identifier,
        sender=row.sender,
        thread=row.thread,
        version=row.version,
        event=row.event_id,
        received=format_time(row.received_ms),
        duplicate=duplicate,
    )
