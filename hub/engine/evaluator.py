"""Matching and planning, pure: an incident and the playbooks in, planned tasks and reasons out.

No clock, no ids from the system, no I/O: the caller passes the time the incident was reported
and the id of the event that caused the planning, every task id is derived from its cause, and
everything emitted is sorted, so the same input always gives byte-identical tasks.

Matching goes through an index: a playbook whose conditions can only hold for some categories,
or from some severity up, is not even looked at for other incidents. Playbooks marked
``fallback`` are tried only when no other playbook matched and none failed (a failed playbook
might have handled the incident; its failure is published for a person to look at).
A playbook that raises is reported in ``failures`` and costs the others nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hub.engine.conditions import compile_node
from hub.engine.conditions import reasons as why_held
from hub.engine.operators import Facts
from hub.engine.playbook import Playbook
from hub.engine.spatial import Area
from hub.engine.steps import Hold, Ladder, Occasion, Outcome, ResourceRequest, run_steps
from hub.model.envelope import Lane
from hub.model.incident import SEVERITY_RANK, Category, Incident, Info
from hub.model.task import Task
from hub.region import Region


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one playbook matched an incident, and why (or why not)."""

    playbook: str
    version: int
    matched: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """What the playbooks ask for one incident message. ``verdicts`` are the playbooks that
    matched (``explain`` gives every playbook's); ``failures`` are (playbook, reason)."""

    tasks: tuple[Task, ...]
    verdicts: tuple[Verdict, ...]
    failures: tuple[tuple[str, str], ...] = ()
    holds: tuple[Hold, ...] = ()
    ladders: tuple[Ladder, ...] = ()
    requests: tuple[ResourceRequest, ...] = ()


_NOTHING = Plan((), ())


Entry = tuple[Playbook, Callable[[Facts], bool]]


class Book:
    """Playbooks indexed by the (category, severity) an incident must have to interest them,
    each with its conditions compiled for the hot path."""

    def __init__(self, playbooks: Sequence[Playbook]) -> None:
        self.playbooks = tuple(sorted(playbooks, key=lambda p: p.id))
        entries = [(p, compile_node(p.conditions)) for p in self.playbooks]
        self._position = {id(p): i for i, p in enumerate(self.playbooks)}
        self._table: dict[tuple[bool, str, int], tuple[Entry, ...]] = {}
        for fallback in (False, True):
            for category in Category:
                for rank in SEVERITY_RANK.values():
                    self._table[(fallback, category.value, rank)] = tuple(
                        (p, test)
                        for p, test in entries
                        if p.fallback is fallback and _admits(p, category.value, rank)
                    )

    def candidates(self, incident: Incident, fallback: bool) -> Sequence[Entry]:
        """Playbooks whose conditions could hold on some info block of ``incident``."""
        infos = incident.info
        if len(infos) == 1 and len(infos[0].category) == 1:
            info = infos[0]
            return self._table[(fallback, info.category[0], SEVERITY_RANK[info.severity])]
        found: dict[int, Entry] = {}
        for info in infos:
            rank = SEVERITY_RANK[info.severity]
            for category in info.category:
                for entry in self._table[(fallback, category, rank)]:
                    found[self._position[id(entry[0])]] = entry
        return [found[i] for i in sorted(found)]


def _admits(playbook: Playbook, category: str, rank: int) -> bool:
    allowed = playbook.categories
    return (allowed is None or category in allowed) and rank >= playbook.min_severity


def _info_admits(playbook: Playbook, info: Info) -> bool:
    rank = SEVERITY_RANK[info.severity]
    return any(_admits(playbook, c, rank) for c in info.category)


# Books are kept per sequence of playbook objects; an entry holds the playbooks themselves, so
# the ids in its key cannot be reused while it is cached. The hub passes the same sequence for
# every record, so it is recognised by identity first (a loaded playbook list is never changed).
_BOOKS: OrderedDict[tuple[int, ...], Book] = OrderedDict()
_LAST: list[tuple[Sequence[Playbook], int, Book]] = []


def book_of(playbooks: Sequence[Playbook] | Book) -> Book:
    """The index for these playbooks, built once per set."""
    if isinstance(playbooks, Book):
        return playbooks
    if _LAST and _LAST[0][0] is playbooks and _LAST[0][1] == len(playbooks):
        return _LAST[0][2]
    key = tuple(id(p) for p in playbooks)
    book = _BOOKS.get(key)
    if book is None:
        book = _BOOKS[key] = Book(playbooks)
        if len(_BOOKS) > 8:
            _BOOKS.popitem(last=False)
    else:
        _BOOKS.move_to_end(key)
    _LAST[:] = [(playbooks, len(playbooks), book)]
    return book


@dataclass(slots=True)
class Collected:
    tasks: dict[str, Task] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    ladders: list[Ladder] = field(default_factory=list)
    requests: list[ResourceRequest] = field(default_factory=list)

    def add(self, playbook: Playbook, reasons: list[str], outcome: Outcome) -> None:
        self.verdicts.append(Verdict(playbook.id, playbook.version, True, tuple(reasons)))
        for task in outcome.tasks:
            self.tasks.setdefault(task.id, task)
        self.holds.extend(outcome.holds)
        self.ladders.extend(outcome.ladders)
        self.requests.extend(outcome.requests)

    def fail(self, playbook: Playbook, exc: Exception) -> None:
        self.failures.append((playbook.id, f"{type(exc).__name__}: {exc}"))

    def plan(self) -> Plan:
        return Plan(
            tasks=tuple(self.tasks[k] for k in sorted(self.tasks)),
            verdicts=tuple(self.verdicts),
            failures=tuple(self.failures),
            holds=tuple(self.holds),
            ladders=tuple(sorted(self.ladders, key=lambda x: (x.task, x.step))),
            requests=tuple(sorted(self.requests, key=lambda x: x.task)),
        )


def matching_info(
    playbook: Playbook, test: Callable[[Facts], bool], facts: Sequence[Facts]
) -> Facts | None:
    """The facts of the first info block on which the playbook's conditions hold."""
    if len(facts) == 1:
        return facts[0] if test(facts[0]) else None
    for f in facts:
        if _info_admits(playbook, f.info) and test(f):
            return f
    return None


def plan(
    incident: Incident,
    *,
    thread: str,
    cause: str,
    reported_ms: int,
    lane: Lane,
    playbooks: Sequence[Playbook] | Book,
    region: Region,
) -> Plan:
    """Which playbooks match ``incident`` and the tasks they give, sorted by task id."""
    book = book_of(playbooks)
    if not (book.candidates(incident, False) or book.candidates(incident, True)):
        return _NOTHING  # most incidents: no playbook cares about this category and severity
    area = Area(region, incident)
    facts = [Facts(incident, info, area) for info in incident.info]
    out = Collected()
    matched: list[tuple[Playbook, Facts]] = []
    for fallback in (False, True):
        if fallback and (matched or out.failures):
            break
        for playbook, test in book.candidates(incident, fallback):
            try:
                found = matching_info(playbook, test, facts)
            except Exception as exc:  # a playbook bug must not stop the others: reported
                out.fail(playbook, exc)
                continue
            if found is not None:
                matched.append((playbook, found))
    if not (matched or out.failures):
        return _NOTHING
    at = Occasion(incident, thread, cause, reported_ms, lane, area)
    for playbook, found in matched:
        try:
            reasons = why_held(playbook.conditions, found)
            outcome = run_steps(playbook, found.info, reasons, at, detail=False)
        except Exception as exc:  # a playbook bug must not stop the others: reported
            out.fail(playbook, exc)
            continue
        out.add(playbook, reasons, outcome)
    return out.plan()
