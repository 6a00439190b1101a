"""The intake: turns a posted canonical incident into a stored version and an
``incident.reported`` event, in one transaction, exactly once per sender and identifier."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
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
from hub.store.batching import Batcher
from hub.store.db import Runner, Tx
from hub.store.outbox import Appended, Emitter, first_emission
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


Accepted = Receipt | Exception
"""A report's answer in a batch: its receipt, or its own error (``Conflict``)."""

_Report = tuple[Incident, AdapterCredential, _Rendered]


class IntakeService:
    def __init__(self, db: Runner, emitter: Emitter, clock: Clock, region: Region) -> None:
        self._db = db
        self._emitter = emitter
        self._clock = clock
        self._region = region
        self._reports = Batcher[_Report, Receipt](db, self.accept_many_in, name="liandong-intake")

    async def report(self, incident: Incident, credential: AdapterCredential) -> Receipt:
        """Store ``incident`` as its sender's next message and emit it, once. Reports that
        arrive while others are being written are written together, in one transaction
        (``accept_many_in``)."""
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
        return await self._reports.submit((incident, credential, _render(incident)))

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
        if _own_thread(incident):
            answers: list[Accepted | None] = [None]
            self._accept_run(tx, [(incident, credential, rendered)], [0], answers)
            (answer,) = answers
            if isinstance(answer, Exception):
                raise answer
            assert answer is not None
            return answer
        existing = store.get_incident(tx.conn, incident.sender, incident.identifier)
        if existing is not None:
            return _seen(existing, incident, rendered)
        thread = self._thread_of(tx, incident)
        row, event = self._new(
            incident, credential, rendered, thread, store.next_version(tx.conn, thread)
        )
        with pipeline(tx.conn):
            store.insert_incident(tx.conn, row)
            self._emitter.append_many(tx, [event])
        return _receipt(row, duplicate=False)

    def accept_many_in(self, tx: Tx, reports: Sequence[_Report]) -> list[Accepted]:
        """``accept_in`` for each of ``reports`` in order, inside the caller's transaction, each
        seeing those before it; a report's own error (``Conflict``) is its answer. A run of
        reports that start their own thread (Alerts) is read and written by a few statements
        for the whole run."""
        answers: list[Accepted | None] = [None] * len(reports)
        run: list[int] = []
        for n, (incident, credential, rendered) in enumerate(reports):
            if _own_thread(incident):
                run.append(n)
                continue
            self._accept_run(tx, reports, run, answers)
            run = []
            try:
                answers[n] = self.accept_in(tx, incident, credential, rendered)
            except Conflict as exc:  # raised before it wrote anything
                answers[n] = exc
        self._accept_run(tx, reports, run, answers)
        assert all(a is not None for a in answers)
        return [a for a in answers if a is not None]

    def _accept_run(
        self, tx: Tx, reports: Sequence[_Report], run: list[int], answers: list[Accepted | None]
    ) -> None:
        """The Alerts ``run`` (indexes into ``reports``): two reads for them all (which exist,
        their threads' next versions), then their rows and events written together."""
        if not run:
            return
        incidents = [reports[n][0] for n in run]
        with pipeline(tx.conn):
            read_existing = store.read_incidents(
                tx.conn, [(i.sender, i.identifier) for i in incidents]
            )
            read_versions = store.read_next_versions(tx.conn, [i.key for i in incidents])
        existing, versions = read_existing(), read_versions()
        rows: list[store.StoredIncident] = []
        events: list[Appended] = []
        for n in run:
            incident, credential, rendered = reports[n]
            found = existing.get((incident.sender, incident.identifier))
            if found is not None:
                try:
                    answers[n] = _seen(found, incident, rendered)
                except Conflict as exc:
                    answers[n] = exc
                continue
            thread = incident.key
            row, event = self._new(incident, credential, rendered, thread, versions[thread])
            existing[(incident.sender, incident.identifier)] = row
            versions[thread] += 1
            rows.append(row)
            events.append(event)
            answers[n] = _receipt(row, duplicate=False)
        with pipeline(tx.conn):
            store.insert_incidents(tx.conn, rows)
            self._emitter.append_many(tx, events)

    def _new(
        self,
        incident: Incident,
        credential: AdapterCredential,
        rendered: _Rendered,
        thread: str,
        version: int,
    ) -> tuple[store.StoredIncident, Appended]:
        """A new message's row and its ``incident.reported`` event."""
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
        topic = topics.for_lane(topics.INCIDENTS, lane)
        return row, (topic, thread, envelope.encode(), now)

    @staticmethod
    def _thread_of(tx: Tx, incident: Incident) -> str:
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


def _own_thread(incident: Incident) -> bool:
    """Whether ``incident`` starts its own thread (an Alert, or a message referring to none)."""
    return incident.msgType is MsgType.ALERT or not incident.references


def _seen(existing: store.StoredIncident, incident: Incident, rendered: _Rendered) -> Receipt:
    """The answer to a message already received: the same receipt, or a conflict."""
    if existing.digest != rendered.digest:
        raise Conflict(
            f"identifier '{incident.identifier}' from sender {incident.sender} was already "
            "received with different content; a changed report needs a new identifier "
            "(msgType Update with references)"
        )
    return _receipt(existing, duplicate=True)


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
