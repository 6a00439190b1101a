"""The registry's operations as transactions: each changes stock and emits its events together.

``request`` is the heart: requests arriving together are decided together in one transaction
(``hold_batch``): read the holds, depots, balances and partners' totals for the day once, let
the policy decide each request in order (each seeing what those before it took), then write
every touched balance and total as a compare-and-set on what was read. On PostgreSQL another
transaction may take the stock between the read and the write; the compare-and-set then changes
nothing and the batch is retried (``ConcurrentUpdate``), reading afresh, so a refusal always
names the clause against the stock as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.bus import topics
from hub.clock import Clock
from hub.drills.isolation import check_stock_request
from hub.errors import Conflict, HubError, InvalidInput, NotFound
from hub.model.envelope import Lane, OutgoingEvent, derived_id, format_time
from hub.model.payload import Payload
from hub.model.region import Agreement, Clause, speaks_for
from hub.model.resources import (
    STOCK_EVENT_TYPES,
    STOCK_LOW,
    STOCK_REFUSED,
    StockLow,
    StockRefused,
)
from hub.region import Region
from hub.registry import hold_batch, ledger
from hub.registry import holds as hold_store
from hub.registry.allocation import Plan, PlanLine, plan
from hub.registry.catalogue import supply
from hub.registry.depots import Depot, get_depot, list_depots
from hub.registry.holds import Hold, HoldState
from hub.registry.policy import Grant, Refusal, decide, terms
from hub.store.batching import Batcher
from hub.store.db import Runner, Tx
from hub.store.outbox import Appended, Emitter

SOURCE = "/liandong/hub/registry"
DEFAULT_HOLD_MS = 30 * 60_000
_Move = Callable[[Tx, int], ledger.Recorded]
_MAX_BATCH = 128  # requests decided in one transaction


@dataclass(frozen=True, slots=True)
class StockRequest:
    """A partner asks a depot for stock under an agreement (its resources clause)."""

    request: str
    depot: str
    item: str
    quantity: int
    partner: str
    agreement: str
    actor: str
    clause: str | None = None
    hold_ms: int = DEFAULT_HOLD_MS
    """How long a hold awaiting the owner's approval lasts before its stock returns."""
    drill: str | None = None
    """The drill asking (an exercise request), None for live operations."""


@dataclass(frozen=True, slots=True)
class Answer:
    hold: Hold | None
    refusal: str | None = None


class PlanNoLongerHolds(Conflict):
    """Stock or daily totals moved since the plan was made: one of its lines would be refused."""


def request_key(requester: str, client_id: str) -> str:
    """The request id a plan's holds carry: the client's id, scoped to its jurisdiction."""
    return f"{requester}/{client_id}"


class Registry:
    """Stock operations, each one transaction with its events; ``agreements`` defaults to the
    region's (tests pass others)."""

    def __init__(
        self,
        db: Runner,
        emitter: Emitter,
        clock: Clock,
        region: Region,
        agreements: Sequence[Agreement] | None = None,
    ) -> None:
        self._db, self._emitter, self._clock, self._region = db, emitter, clock, region
        chosen = region.agreements if agreements is None else agreements
        self._agreements: Mapping[str, Agreement] = {a.id: a for a in chosen}
        self._holds = Batcher[StockRequest, Answer](
            db, self._requests_in, name="liandong-registry-holds", max_batch=_MAX_BATCH
        )
        self.drill: str | None = None  # a drill's virtual copy of the ledger: its drill id

    def _name(self, code: str) -> str:
        return self._region.jurisdiction(code).name_en if self._region.is_known(code) else code

    def _emit(self, tx: Tx, depot: Depot, recorded: Sequence[ledger.Recorded]) -> None:
        self._emitter.append_many(tx, self._events(depot, recorded))

    def _send(self, tx: Tx, event: Appended) -> None:
        """Append one event made by ``_event``."""
        self._emitter.append_many(tx, [event])

    def _events(self, depot: Depot, recorded: Sequence[ledger.Recorded]) -> list[Appended]:
        """The events of ledger entries at ``depot``: each entry's, and ``stock.low`` after an
        entry that took free stock from at or above the minimum to under it."""
        out: list[Appended] = []
        for r in recorded:
            e = r.entry
            kind, at = STOCK_EVENT_TYPES[e.kind.value], format_time(e.at_ms)
            data = stock_changed(r, depot, at)
            out.append(self._event(depot, kind, data, e.request, e.at_ms, str(r.id), at))
            on_hand, held = e.deltas
            free, minimum = r.free, r.minimum
            if (
                on_hand - held < 0
                and free is not None
                and free < minimum <= free - (on_hand - held)
            ):
                low = StockLow(
                    entry=r.id, depot=e.depot, jurisdiction=depot.jurisdiction, item=e.item,
                    free=free, minimum=minimum, at=at,
                )  # fmt: skip
                out.append(self._event(depot, STOCK_LOW, _data(low), e.request, e.at_ms, str(r.id)))
        return out

    def _event(
        self,
        depot: Depot,
        type_: str,
        data: dict[str, Any],
        correlation: str | None,
        at_ms: int,
        key: str,
        at: str | None = None,
    ) -> Appended:
        """One registry event about ``depot``; ``key`` makes its id (one per fact); ``at`` is
        ``at_ms`` already formatted, when the caller has it."""
        event = OutgoingEvent(
            id=derived_id("registry", type_, depot.id, key),
            source=SOURCE,
            type=type_,
            time=format_time(at_ms) if at is None else at,
            data=data,
            jurisdiction=depot.jurisdiction,
            status=Lane.ACTUAL if self.drill is None else Lane.EXERCISE,
            correlationid=correlation or depot.id,
            subject=depot.id,
        )
        topic = topics.for_lane(topics.RESOURCES, event.status)
        return topic, depot.id, event.encode(), at_ms

    def _depot(self, tx: Tx, depot_id: str) -> Depot:
        depot = get_depot(tx.conn, depot_id)
        if depot is None:
            raise NotFound(f"no depot '{depot_id}'")
        return depot

    async def record(self, entry: ledger.Entry) -> ledger.Recorded:
        """Append a receipt, consumption, adjustment, ... (raises ``Refused`` if not covered)."""
        supply(entry.item)

        def job(tx: Tx) -> ledger.Recorded:
            done = ledger.record(tx.conn, entry)
            self._emit(tx, self._depot(tx, entry.depot), [done])
            return done

        return await self._db.run(job)

    def _clause(self, agreement: Agreement, clause_id: str | None) -> Clause | None:
        for clause in agreement.clauses:
            if clause.kind == "resources" and clause_id in (None, clause.id):
                return clause
        return None

    def _terms_or_refusal(self, req: StockRequest, owner: str) -> tuple[Agreement, Clause] | str:
        agreement = self._agreements.get(req.agreement)
        if agreement is None:
            return f"no agreement '{req.agreement}'"
        if not (agreement.binds(owner) and agreement.binds(req.partner)):
            both = f"{self._name(owner)} and {self._name(req.partner)}"
            return f"{req.agreement} does not bind both {both}"
        clause = self._clause(agreement, req.clause)
        if clause is None or agreement.sharing is None:
            which = f"clause {req.clause}" if req.clause else "any clause"
            return f"{req.agreement} has no resources sharing terms under {which}"
        return agreement, clause

    async def request(self, req: StockRequest) -> Answer:
        """Hold (and, under the auto-commit threshold, commit) stock for a partner, or refuse.

        Requests that arrive while a batch is being written wait for the next batch, decided
        together in one transaction (``hold_batch``): one batch in flight per registry."""
        return await self._holds.submit(req)

    def _request_in(self, tx: Tx, req: StockRequest) -> Answer:
        """One request inside the caller's transaction (a plan, an EDXL-RM request)."""
        (answer,) = self._requests_in(tx, [req])
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _requests_in(self, tx: Tx, reqs: Sequence[StockRequest]) -> list[Answer | Exception]:
        """Decide ``reqs`` in order, each seeing what those before it took, and write them
        together; a request's own error (unknown item or depot, a drill's request on the live
        ledger) is its answer and spoils none of the others."""
        answers: list[Answer | Exception | None] = [None] * len(reqs)
        hold_ids = [derived_id("hold", r.request, r.depot, r.item) for r in reqs]
        for n, req in enumerate(reqs):
            try:
                supply(req.item)
                check_stock_request(self.drill, req.drill, req.depot)
            except (HubError, ValueError) as exc:  # an unknown item is a ValueError
                answers[n] = exc
        live = [n for n, a in enumerate(answers) if a is None]
        now = self._clock.now_ms()
        existing, depots, snap = hold_batch.Snapshot.read(
            tx.conn, hold_store.local_day(now),
            hold_ids={hold_ids[n] for n in live}, depot_ids={reqs[n].depot for n in live},
            items={reqs[n].item for n in live}, partners={reqs[n].partner for n in live},
        )  # fmt: skip
        day = snap.day
        events: list[Callable[[dict[tuple[str | None, str], int]], list[Appended]]] = []
        for n in live:
            req, hold_id = reqs[n], hold_ids[n]
            found = existing.get(hold_id)
            if found is not None:  # a retried request (or the same one twice): the first stands
                answers[n] = Answer(found)
                continue
            depot = depots.get(req.depot)
            if depot is None:
                answers[n] = NotFound(f"no depot '{req.depot}'")
                continue
            verdict: Grant | Refusal
            t = self._terms_or_refusal(req, depot.jurisdiction)
            if isinstance(t, str):
                verdict = Refusal(t)
            else:
                verdict = decide(
                    balance=snap.balance(req.depot, req.item),
                    supply=supply(req.item), quantity=req.quantity,
                    owner_name=self._name(depot.jurisdiction),
                    partner_name=self._name(req.partner),
                    taken_today=snap.taken_today(depot.jurisdiction, req.partner, req.item),
                    t=terms(*t),
                )  # fmt: skip
            if isinstance(verdict, Refusal):
                refused = self._refusal(depot, req, verdict, now)
                events.append(_already(refused))
                answers[n] = Answer(None, verdict.reason)
                continue
            assert not isinstance(t, str)
            hold = Hold(
                hold_id, req.depot, req.item, req.quantity, depot.jurisdiction, req.partner,
                req.request, t[0].id, t[1].id,
                HoldState.COMMITTED if verdict.auto_commit else HoldState.HELD, day, now,
                None if verdict.auto_commit else now + req.hold_ms, req.actor,
            )  # fmt: skip
            entries = [hold.entry(ledger.EntryKind.HOLD, req.actor, now)]
            if verdict.auto_commit:
                entries.append(hold.entry(ledger.EntryKind.COMMIT, "policy", now))
            free, minimum = snap.take(hold, entries)
            existing[hold_id] = hold
            answers[n] = Answer(hold)

            def held(
                ids: dict[tuple[str | None, str], int],
                depot: Depot = depot,
                entries: list[ledger.Entry] = entries,
                free: int = free,
                minimum: int = minimum,
            ) -> list[Appended]:
                done = [ledger.Recorded(ids[(e.hold_id, e.kind.value)], e, free, minimum)
                        for e in entries]  # fmt: skip
                return self._events(depot, done)

            events.append(held)
        ids = snap.write(tx.conn)
        self._emitter.append_many(tx, [e for make in events for e in make(ids)])
        return [a for a in answers if a is not None]

    def _refusal(self, depot: Depot, req: StockRequest, r: Refusal, now: int) -> Appended:
        payload = StockRefused(
            request=req.request, depot=depot.id, jurisdiction=depot.jurisdiction, item=req.item,
            quantity=req.quantity, partner=req.partner, reason=r.reason, at=format_time(now),
            agreement=r.agreement, clause=r.clause,
        )  # fmt: skip
        return self._event(depot, STOCK_REFUSED, _data(payload), req.request, now, req.request)

    async def approve(self, hold_id: str, actor: str) -> ledger.Recorded:
        """The owner approves a hold awaiting approval: committed."""
        return await self._hold_job(
            hold_id, lambda tx, now: hold_store.commit_hold(tx.conn, hold_id, actor, now)
        )

    async def release(self, hold_id: str, actor: str, reason: str) -> ledger.Recorded:
        return await self._hold_job(
            hold_id, lambda tx, now: hold_store.release_hold(tx.conn, hold_id, actor, now, reason)
        )

    async def dispatch(self, hold_id: str, actor: str) -> ledger.Recorded:
        return await self._hold_job(
            hold_id, lambda tx, now: hold_store.dispatch_hold(tx.conn, hold_id, actor, now)
        )

    async def _hold_job(self, hold_id: str, move: _Move) -> ledger.Recorded:
        def job(tx: Tx) -> ledger.Recorded:
            now = self._clock.now_ms()
            done = move(tx, now)
            self._emit(tx, self._depot(tx, done.entry.depot), [done])
            return done

        return await self._db.run(job)

    async def expire_due(self) -> list[ledger.Recorded]:
        """Expire the holds whose time is up (at the clock's now); their stock returns."""

        def job(tx: Tx) -> list[ledger.Recorded]:
            done = hold_store.expire_due(tx.conn, self._clock.now_ms())
            for r in done:
                self._emit(tx, self._depot(tx, r.entry.depot), [r])
            return done

        return await self._db.run(job)

    def _plan_in(
        self, tx: Tx, requester: str, item: str, quantity: int, lat: float, lon: float
    ) -> Plan:
        now = self._clock.now_ms()
        day = hold_store.local_day(now)
        in_force = [a for a in self._agreements.values() if a.in_force(_date(day))]
        depots = list_depots(tx.conn)
        owners = sorted({d.jurisdiction for d in depots})
        return plan(
            requester=requester, item=item, quantity=quantity, lat=lat, lon=lon, depots=depots,
            balances={b.depot: b for b in ledger.balances(tx.conn, item=item)},
            taken_today={
                o: hold_store.taken_today(tx.conn, o, requester, item, day) for o in owners
            },
            agreements=in_force,
            names={c: self._name(c) for c in [*owners, requester]},
        )  # fmt: skip

    async def plan(self, requester: str, item: str, quantity: int, lat: float, lon: float) -> Plan:
        """A plan for ``requester`` (nothing changes: it is shown before it is committed)."""
        supply(item)
        return await self._db.run(lambda tx: self._plan_in(tx, requester, item, quantity, lat, lon))

    async def commit_plan(
        self, requester: str, client_id: str, item: str, lines: Sequence[PlanLine], actor: str
    ) -> list[Hold]:
        """Hold every line of a plan in one transaction, or none (``PlanNoLongerHolds`` naming
        each line the policy now refuses). A retry with the same id and lines gets the same
        holds; the same id with other lines is a ``Conflict``."""
        supply(item)
        key = request_key(requester, client_id)
        wanted = sorted((line.depot, line.quantity) for line in lines)
        if not wanted or len({d for d, _ in wanted}) != len(wanted):
            raise InvalidInput("a plan needs at least one line and one line per depot")

        def job(tx: Tx) -> list[Hold]:
            existing = hold_store.holds_of_request(tx.conn, key)
            if existing:
                if sorted((h.depot, h.quantity) for h in existing) != wanted or any(
                    h.item != item for h in existing
                ):
                    raise Conflict(f"request '{client_id}' was already committed with other lines")
                return existing
            held: list[Hold] = []
            refused: list[str] = []
            for line in lines:
                if speaks_for(requester, self._depot(tx, line.depot).jurisdiction):
                    raise InvalidInput(f"depot {line.depot} is {requester}'s own, not a partner's")
                ask = StockRequest(
                    key, line.depot, item, line.quantity, requester, line.agreement, actor,
                    line.clause,
                )  # fmt: skip
                answer = self._request_in(tx, ask)
                if answer.hold is None:
                    refused.append(f"{line.depot}: {answer.refusal}")
                else:
                    held.append(answer.hold)
            if refused:  # raising rolls back every line's hold
                raise PlanNoLongerHolds("the plan no longer holds: " + "; ".join(refused))
            return held

        return await self._db.run(job)

    async def get_hold(self, hold_id: str) -> Hold:
        found = await self._db.run(lambda tx: hold_store.get_hold(tx.conn, hold_id))
        if found is None:
            raise NotFound(f"no hold '{hold_id}'")
        return found

    async def balances(
        self, jurisdiction: str | None = None, item: str | None = None
    ) -> list[tuple[Depot, ledger.Balance]]:
        """Balances by depot (of depots ``jurisdiction`` speaks for, if given) and item."""

        def read(tx: Tx) -> list[tuple[Depot, ledger.Balance]]:
            depots = {
                d.id: d
                for d in list_depots(tx.conn)
                if jurisdiction is None or speaks_for(jurisdiction, d.jurisdiction)
            }
            found = ledger.balances(tx.conn, item=item)
            return [(depots[b.depot], b) for b in found if b.depot in depots]

        return await self._db.run(read)


def _already(event: Appended) -> Callable[[dict[tuple[str | None, str], int]], list[Appended]]:
    """An event that needs no ledger id, in the shape of those that do."""
    return lambda _ids: [event]


def _data(payload: Payload) -> dict[str, Any]:
    data: dict[str, Any] = payload.model_dump(mode="json", exclude_none=True)
    return data


def stock_changed(r: ledger.Recorded, depot: Depot, at: str) -> dict[str, Any]:
    """The ``StockChanged`` payload of a ledger entry as JSON-ready data, built directly: this
    runs for every hold, and validating a model we fill from typed values only costs time. A
    test checks it is what ``StockChanged(...).model_dump(exclude_none=True)`` gives."""
    e = r.entry
    on_hand, held = e.deltas
    data: dict[str, Any] = {
        "entry": r.id, "depot": e.depot, "jurisdiction": depot.jurisdiction, "item": e.item,
        "kind": e.kind.value, "quantity": e.quantity, "on_hand_delta": on_hand,
        "held_delta": held, "actor": e.actor, "at": at,
    }  # fmt: skip
    for name, value in (
        ("reason", e.reason), ("hold", e.hold_id), ("request", e.request),
        ("partner", e.partner), ("agreement", e.agreement), ("clause", e.clause),
    ):  # fmt: skip
        if value is not None:
            data[name] = value
    return data


def _date(day: str) -> dt.date:
    return dt.date.fromisoformat(day)
