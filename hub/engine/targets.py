"""Who a step addresses, and the agreement that authorises each request.

Sources (any combination): districts within N km of the incident's area, the sender's neighbours
by adjacency, the parties of the agreements covering the hazard category, an explicit list, the
sender itself. The sender's own jurisdiction is left out unless ``sender`` is asked for. Every
candidate is then kept only where an agreement in force on the day the incident was sent binds
the sender and the target with a clause of the step's kind covering one of the incident's
categories; the most specific such authority is recorded (fewest parties, then the narrowest
clause), so the answer does not depend on the order agreements are listed in.

An agreement binds its parties to each other, not a party to itself: two districts bound only
through the same city party (Wujiang and Wuzhong, both Suzhou) are not authorised by it; what
happens between them is their city's own business.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

from hub.engine.playbook import Targets
from hub.engine.spatial import Area
from hub.model.incident import Incident, Info
from hub.model.region import Agreement, Clause, ClauseKind, city_of
from hub.region import Region


@dataclass(frozen=True, slots=True)
class Authorised:
    code: str
    note: str
    agreement: Agreement
    clause: Clause


@dataclass(frozen=True, slots=True)
class Refused:
    code: str
    note: str
    reason: str


def candidates(
    spec: Targets,
    incident: Incident,
    info: Info,
    area: Area,
    kind: ClauseKind,
    detail: bool = True,
) -> tuple[dict[str, str], list[str]]:
    """Candidate targets (code → how it was found) and notes on sources that found nothing.

    Without ``detail``, the spatial query is skipped when no agreement could authorise anyone
    for the sender (it would find only candidates to refuse)."""
    region = area.region
    sender = incident.sender
    own = _own(region, sender)
    found: dict[str, str] = {}
    notes: list[str] = []

    def add(code: str, note: str) -> None:
        if code not in own:
            found.setdefault(code, note)

    for code in spec.jurisdictions:
        add(code, f"{code} listed by the playbook")
    if spec.within_km is not None:
        if not detail and not could_authorise(area, sender, info, kind):
            pass
        elif area.usable:
            for code, km in area.within_km(spec.within_km, exclude=sender):
                add(code, f"{code} within {spec.within_km:g} km ({km:.1f} km)")
        else:
            notes.append(f"within {spec.within_km:g} km: the incident has no usable area")
    if spec.neighbours:
        for code in region.neighbours(sender):
            add(code, f"{code} borders {sender}")
    if spec.agreement_parties:
        for category in info.category:
            for code in region.partners(sender, category, kind, area.sent_on):
                add(code, f"{code} is a party with {sender} to an agreement covering {category}")
    if spec.sender:
        found.setdefault(sender, f"{sender} is the sender")
    return found, notes


def authorise(
    found: dict[str, str], incident: Incident, info: Info, area: Area, kind: ClauseKind
) -> tuple[list[Authorised], list[Refused]]:
    """Split candidates into those an agreement authorises and those it does not (by code)."""
    region = area.region
    sender = incident.sender
    kept: list[Authorised] = []
    refused: list[Refused] = []
    categories = tuple(info.category)
    for code in sorted(found):
        authority = _authority(region, sender, code, categories, kind, area.sent_on)
        if authority is None:
            hazards = "/".join(categories)
            reason = (
                f"no agreement in force binds {sender} and {code} with a {kind} clause "
                f"for {hazards}"
            )
            refused.append(Refused(code, found[code], reason))
            continue
        kept.append(Authorised(code, found[code], *authority))
    return kept, refused


@functools.lru_cache(maxsize=65536)
def _authority(
    region: Region, sender: str, code: str, categories: tuple[str, ...], kind: ClauseKind, on: date
) -> tuple[Agreement, Clause] | None:
    """The most specific (agreement, clause) authorising ``sender`` to ask ``code``; the
    agreements of a region never change, so the answer is kept."""
    for category in categories:
        binding = [
            (agreement, clause)
            for agreement, clause in region.agreements_binding(
                sender, code, category, kind=kind, on=on
            )
            if _party(agreement, sender) != _party(agreement, code)
        ]
        if binding:
            return min(
                binding,
                key=lambda ac: (
                    len(region.parties(ac[0].id)),
                    len(ac[1].categories),
                    ac[0].id,
                    ac[1].id,
                ),
            )
    return None


def could_authorise(area: Area, sender: str, info: Info, kind: ClauseKind) -> bool:
    """Whether any agreement in force binds the sender to someone with a clause of ``kind``
    covering one of the categories (if not, no target can be authorised)."""
    return bool(_partners(area.region, sender, tuple(info.category), kind, area.sent_on))


@functools.lru_cache(maxsize=65536)
def _partners(
    region: Region, sender: str, categories: tuple[str, ...], kind: ClauseKind, on: date
) -> frozenset[str]:
    found: set[str] = set()
    for category in categories:
        found.update(region.partners(sender, category, kind, on))
    return frozenset(found)


@functools.lru_cache(maxsize=1024)
def _own(region: Region, sender: str) -> frozenset[str]:
    """The sender's own jurisdiction (a city: all its districts), never a target by default."""
    return (
        frozenset(region.districts_of(sender)) if region.is_known(sender) else frozenset({sender})
    )


def _party(agreement: Agreement, code: str) -> str:
    """The party through which the agreement binds ``code``: itself, or its city."""
    return code if code in agreement.parties else city_of(code)


def kind_of(spec: Targets, default_kind: ClauseKind) -> ClauseKind:
    return spec.agreement.kind if spec.agreement is not None else default_kind


def select(
    spec: Targets,
    default_kind: ClauseKind,
    incident: Incident,
    info: Info,
    area: Area,
    detail: bool = True,
) -> tuple[list[Authorised], list[Refused], list[str]]:
    """Targets of a step: authorised ones, refused ones with the reason, and notes."""
    kind = kind_of(spec, default_kind)
    found, notes = candidates(spec, incident, info, area, kind, detail)
    kept, refused = authorise(found, incident, info, area, kind)
    return kept, refused, notes


def describe(region: Region, code: str) -> str:
    j = region.jurisdiction(code)
    return f"{j.name_zh} {j.name_en} {code}"
