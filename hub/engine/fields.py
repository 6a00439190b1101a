"""CAP fields named by path (``sender``, ``info.event``, ``info.parameter.waterLevel``), so a
condition can compare any field of the canonical incident.

A path is checked when the playbook loads: a misspelt field is an error then, not a condition
that silently never holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hub.model.incident import Incident, Info

_INCIDENT_FIELDS = frozenset(Incident.model_fields) - {"info"}
_INFO_FIELDS = frozenset(Info.model_fields) - {"area", "resource", "eventCode", "parameter"}
_NAMED_LISTS = ("eventCode", "parameter")

Scope = Literal["incident", "info", "named", "areaDesc", "geocode"]


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A compiled field path; ``values`` gives the field's values as text (a list field gives
    each element, an absent field none)."""

    path: str
    scope: Scope
    name: str

    def values(self, incident: Incident, info: Info) -> tuple[str, ...]:
        if self.scope == "incident":
            return _texts(getattr(incident, self.name))
        if self.scope == "info":
            return _texts(getattr(info, self.name))
        if self.scope == "named":
            listed, wanted = self.name.split(".", 1)
            return tuple(p.value for p in getattr(info, listed) if p.valueName == wanted)
        if self.scope == "areaDesc":
            return tuple(a.areaDesc for a in info.area)
        return tuple(g.value for a in info.area for g in a.geocode if g.valueName == self.name)


def _texts(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return (str(value),)


def field_ref(path: str) -> FieldRef:
    """Compile a field path; raises ValueError naming the fields there are."""
    parts = path.split(".")
    if len(parts) == 1 and parts[0] in _INCIDENT_FIELDS:
        return FieldRef(path, "incident", parts[0])
    if parts[0] == "info" and len(parts) == 2 and parts[1] in _INFO_FIELDS:
        return FieldRef(path, "info", parts[1])
    if parts[0] == "info" and len(parts) == 3 and parts[1] in _NAMED_LISTS and parts[2]:
        return FieldRef(path, "named", f"{parts[1]}.{parts[2]}")
    if parts[:3] == ["info", "area", "areaDesc"] and len(parts) == 3:
        return FieldRef(path, "areaDesc", "areaDesc")
    if parts[:3] == ["info", "area", "geocode"] and len(parts) == 4 and parts[3]:
        return FieldRef(path, "geocode", parts[3])
    raise ValueError(
        f"unknown CAP field '{path}'; use one of {', '.join(sorted(_INCIDENT_FIELDS))}, "
        f"info.<{'|'.join(sorted(_INFO_FIELDS))}>, info.eventCode.NAME, info.parameter.NAME, "
        "info.area.areaDesc or info.area.geocode.NAME"
    )
