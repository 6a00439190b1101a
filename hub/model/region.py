"""Region vocabulary as pure data: jurisdictions and the agreements between them.

These models do no I/O and know nothing of geometry; ``hub.region`` loads them from the
packaged data files and answers spatial questions. Codes are GB/T 2260 administrative codes
(six digits): a city ends in ``00`` (``320500`` Suzhou), a district does not (``320509``
Wujiang). Shanghai is a municipality: the hub uses ``310000`` for the city and ``3101xx`` for its
districts.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

CapCategory = Literal[
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
    "CBRNE", "Other",
]  # fmt: skip
"""CAP 1.2 ``<category>`` values."""

CAP_CATEGORIES: tuple[CapCategory, ...] = (
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
    "CBRNE", "Other",
)  # fmt: skip

ClauseKind = Literal["liaison", "information", "joint_response", "joint_enforcement", "resources"]
"""What a clause commits the parties to: keep in touch, share information, respond together,
enforce together, or lend supplies."""

CLAUSE_KINDS: tuple[ClauseKind, ...] = (
    "liaison", "information", "joint_response", "joint_enforcement", "resources",
)  # fmt: skip

RungLevel = Literal["duty_liaison", "district_command", "city_command", "regional_coordinator"]
"""Who is called at each rung of an escalation ladder, lowest first."""

LADDER: tuple[RungLevel, ...] = (
    "duty_liaison", "district_command", "city_command", "regional_coordinator",
)  # fmt: skip

# Municipalities directly under the central government: their districts' city is pp0000.
_MUNICIPALITY_PREFIXES = frozenset({"11", "12", "31", "50"})
_CODE_RE = re.compile(r"^[1-9][0-9]{5}$")


def _check_code(code: str) -> str:
    if not _CODE_RE.fullmatch(code):
        raise ValueError(f"not a GB/T 2260 code: {code!r}")
    return code


Code = Annotated[str, AfterValidator(_check_code)]
"""A six-digit GB/T 2260 administrative code."""


def is_city_code(code: str) -> bool:
    """True for a prefecture-level city or municipality code (ends in ``00``)."""
    return code.endswith("00")


def city_of(code: str) -> str:
    """The city a code belongs to: itself for a city, ``pp0000`` for a municipality's district
    (``310118`` → ``310000``), ``ppcc00`` otherwise (``320509`` → ``320500``)."""
    if is_city_code(code):
        return code
    if code[:2] in _MUNICIPALITY_PREFIXES:
        return code[:2] + "0000"
    return code[:4] + "00"


def speaks_for(credential: str, code: str) -> bool:
    """Whether a credential bound to ``credential`` may act for ``code``: its own jurisdiction,
    or, for a city's command centre, any district of that city (a city system reports and
    answers for its districts, as a city party of an agreement binds them)."""
    return code == credential or (is_city_code(credential) and city_of(code) == credential)


def clause_sort_key(clause_id: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order for clause ids, so that "4.2" < "10.1"."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in clause_id.split("."))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Jurisdiction(_Frozen):
    """A city or district with its own command centre."""

    code: Code
    name_zh: str = Field(min_length=1)
    name_en: str = Field(min_length=1)
    level: Literal["city", "district"]
    parent: Code | None = None
    centroid: tuple[float, float]
    """A representative point inside the jurisdiction, (lat, lon): where to put its label."""

    @model_validator(mode="after")
    def _level_matches_code(self) -> Jurisdiction:
        if self.level == "city" and (self.parent is not None or not is_city_code(self.code)):
            raise ValueError(f"city {self.code} must end in 00 and have no parent")
        if self.level == "district" and self.parent != city_of(self.code):
            raise ValueError(f"district {self.code} must have parent {city_of(self.code)}")
        return self


class Clause(_Frozen):
    """One numbered commitment of an agreement, scoped to CAP categories."""

    id: str = Field(pattern=r"^[0-9]+(\.[0-9]+)*$")
    title_zh: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    kind: ClauseKind
    categories: tuple[CapCategory, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_categories(self) -> Clause:
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"clause {self.id}: duplicate category")
        return self

    def covers(self, category: str, kind: str | None = None) -> bool:
        """Whether this clause applies to an incident of ``category`` (and is of ``kind``)."""
        return category in self.categories and (kind is None or kind == self.kind)


class Liaison(_Frozen):
    """One entry of an agreement's liaison roster: who answers for a party."""

    party: Code
    role_zh: str = Field(min_length=1)
    role_en: str = Field(min_length=1)
    contact: str = Field(min_length=1)
    """A routing address, not a person's number; the data file holds placeholders."""


class EscalationRung(_Frozen):
    """A rung of the ladder: who is called, and how long to wait for them before climbing."""

    level: RungLevel
    wait: dt.timedelta
    """ISO 8601 duration in the data file, e.g. ``PT15M``."""

    @model_validator(mode="after")
    def _positive_wait(self) -> EscalationRung:
        if self.wait <= dt.timedelta(0):
            raise ValueError(f"rung {self.level}: wait must be positive")
        return self


class SafetyFloor(_Frozen):
    """What a lender always keeps back (placeholder until the registry defines policies)."""

    policy: Literal["keep_fraction"]
    fraction: float = Field(ge=0.0, le=1.0)
    """Share of each depot's stock of an item that is never lent."""


class Sharing(_Frozen):
    """Terms for lending supplies under an agreement's resources clauses.

    Amounts are fractions of the lender's lendable stock (stock above the safety floor) so the
    same terms apply to sandbags and pumps alike; the registry may refine them per item.
    """

    safety_floor: SafetyFloor
    auto_commit_threshold: float = Field(ge=0.0, le=1.0)
    """Requests up to this share of lendable stock are committed without a human decision."""
    per_request_cap: float = Field(gt=0.0, le=1.0)
    """No single request may take more than this share of lendable stock."""
    per_day_cap: float = Field(gt=0.0, le=1.0)
    """No partner may take more than this share of lendable stock in one day (UTC+8)."""

    @model_validator(mode="after")
    def _day_covers_request(self) -> Sharing:
        if self.per_day_cap < self.per_request_cap:
            raise ValueError("per_day_cap is below per_request_cap: no full request could pass")
        return self


class Agreement(_Frozen):
    """A mutual-aid compact between parties (cities bind all their districts)."""

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    title_zh: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    parties: tuple[Code, ...] = Field(min_length=2)
    external_parties: tuple[Code, ...] = ()
    """Signatories outside the modelled region: recorded for completeness, never bound."""
    effective_from: dt.date
    effective_to: dt.date | None = None
    """Last day in force (inclusive); None for open-ended."""
    note: str | None = None
    clauses: tuple[Clause, ...] = Field(min_length=1)
    liaison: tuple[Liaison, ...]
    escalation: tuple[EscalationRung, ...] = Field(min_length=1)
    sharing: Sharing | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Agreement:
        def dupes(items: tuple[str, ...]) -> set[str]:
            return {i for i in items if items.count(i) > 1}

        if d := dupes(self.parties + self.external_parties):
            raise ValueError(f"duplicate parties {sorted(d)}")
        if d := dupes(tuple(c.id for c in self.clauses)):
            raise ValueError(f"duplicate clause ids {sorted(d)}")
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        rostered = {entry.party for entry in self.liaison}
        if missing := set(self.parties) - rostered:
            raise ValueError(f"no liaison for parties {sorted(missing)}")
        if stray := rostered - set(self.parties):
            raise ValueError(f"liaison for non-parties {sorted(stray)}")
        order = [LADDER.index(r.level) for r in self.escalation]
        if order != sorted(set(order)):
            raise ValueError(f"escalation rungs must climb in the order {list(LADDER)}")
        has_resources = any(c.kind == "resources" for c in self.clauses)
        if has_resources != (self.sharing is not None):
            raise ValueError("a sharing block is required exactly when there is a resources clause")
        return self

    def binds(self, code: str) -> bool:
        """Whether ``code`` is bound: a party itself, or a district of a city that is a party."""
        return code in self.parties or city_of(code) in self.parties

    def in_force(self, on: dt.date) -> bool:
        """Whether the agreement is in force on the given day."""
        return self.effective_from <= on and (self.effective_to is None or on <= self.effective_to)

    def clauses_for(self, category: str, kind: str | None = None) -> tuple[Clause, ...]:
        """Clauses covering ``category`` (and of ``kind`` if given), in clause-id order."""
        found = [c for c in self.clauses if c.covers(category, kind)]
        return tuple(sorted(found, key=lambda c: clause_sort_key(c.id)))
