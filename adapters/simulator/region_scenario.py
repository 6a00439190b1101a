"""The scenario file of ``liandong simulate``: per city, the incidents it reports and how it
answers its tasks.

A scenario is YAML (example: ``scenarios/region-day.yaml``)::

    title: 长三角一日 / A day in the region
    seed: 20260701            # default of --seed
    run_for: "0:20:00"        # how long the simulation runs (scenario time)
    cities:
      suzhou:                 # an adapter id (its manifest says transport, codec, jurisdiction)
        answers:
          delay: {kind: lognormal, median_s: 40, sigma: 0.6, max_s: 600}
          then: {kind: uniform, min_s: 30, max_s: 180}   # acknowledge -> accept or decline
          decline: {probability: 0.2, reasons: ["..."]}
          silence: 0.05       # probability of never answering a task (escalation follows)
          done: 0.5           # probability of reporting an accepted task done
        incidents:
          - at: "0:01:30"      # offset from the start, "H:MM:SS", "MM:SS" or seconds
            name: pingwang-spill
            sender: "320509"  # default: the city itself; a district of it is allowed
            message: {...}    # CAP 1.2 as JSON, without identifier, sender and sent
          - at: "0:12:00"
            name: pingwang-spill-update
            references: [pingwang-spill]
            message: {msgType: Update, ...}

Each incident is written in canonical CAP JSON and sent in the city's own format (its codec,
inverted), so it must fit that format: one ``info`` block for a JSON dialect, and only fields
its mapping carries; :func:`adapters.simulator.play.check_scenario` says what does not fit.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adapters.framework.yamldoc import describe_errors, load_yaml
from hub.errors import InvalidInput

__all__ = [
    "Answers",
    "CityPlay",
    "Decline",
    "Delay",
    "IncidentPlan",
    "RegionScenario",
    "load_region_scenario",
    "offset_s",
]

_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})$")


def offset_s(value: float | str) -> float:
    """Seconds from ``12.5``, ``"90"``, ``"1:30"`` (MM:SS) or ``"1:02:03"`` (H:MM:SS)."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        found = _CLOCK.match(text)
        if found:
            hours, minutes, secs = found.groups()
            seconds = int(hours or 0) * 3600 + int(minutes) * 60 + int(secs)
        else:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(f"'{value}' is not a time offset (seconds or H:MM:SS)") from None
    if seconds < 0:
        raise ValueError("a time offset cannot be negative")
    return seconds


Offset = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fixed(_Strict):
    """Always the same delay."""

    kind: Literal["fixed"]
    s: float = Field(ge=0)


class Uniform(_Strict):
    kind: Literal["uniform"]
    min_s: float = Field(ge=0)
    max_s: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.max_s < self.min_s:
            raise ValueError("max_s must not be less than min_s")
        return self


class Lognormal(_Strict):
    """Most answers near the median, a long tail of slow ones (how people answer)."""

    kind: Literal["lognormal"]
    median_s: float = Field(gt=0)
    sigma: float = Field(default=0.5, ge=0)
    max_s: float | None = Field(default=None, gt=0, description="cap on one delay")


class Exponential(_Strict):
    kind: Literal["exponential"]
    mean_s: float = Field(gt=0)
    max_s: float | None = Field(default=None, gt=0, description="cap on one delay")


Delay = Annotated[Fixed | Uniform | Lognormal | Exponential, Field(discriminator="kind")]


class Decline(_Strict):
    """How often a city declines an acknowledged task, and the reasons it gives."""

    probability: float = Field(default=0.0, ge=0, le=1)
    reasons: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _reasons_when_needed(self) -> Decline:
        if self.probability > 0 and not [r for r in self.reasons if r.strip()]:
            raise ValueError("a city that declines gives reasons: decline.reasons")
        return self


class Answers(_Strict):
    """How a simulated city answers each task: after ``delay`` it acknowledges (unless it stays
    silent); after ``then`` it declines (``decline.probability``) or, for a task that asks for
    acceptance, accepts; an accepted task is reported done after ``then`` again with
    probability ``done``."""

    delay: Delay = Fixed(kind="fixed", s=5.0)
    then: Delay | None = Field(
        default=None, description="acknowledge → accept/decline; default: delay"
    )
    decline: Decline = Decline()
    silence: float = Field(default=0.0, ge=0, le=1, description="probability of never answering")
    done: float = Field(default=0.0, ge=0, le=1, description="probability of reporting done")


class IncidentPlan(_Strict):
    """One incident a city reports."""

    at: Offset
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$", description="unique in the scenario")
    sender: str | None = Field(default=None, pattern=r"^\d{6}$")
    references: list[str] = Field(default_factory=list, description="names of earlier incidents")
    message: dict[str, Any]

    @field_validator("at", mode="before")
    @classmethod
    def _offset(cls, value: Any) -> float:
        return offset_s(value)

    @field_validator("message")
    @classmethod
    def _no_envelope_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        given = sorted({"identifier", "sender", "sent", "references"} & set(value))
        if given:
            raise ValueError(f"the simulator writes {', '.join(given)}: leave them out")
        return value


class CityPlay(_Strict):
    """What one city does in the scenario."""

    cap_version: Literal["1.1", "1.2"] = Field(
        default="1.2", description="CAP version the city writes (cap and edxl-de cities)"
    )
    answers: Answers = Answers()
    incidents: list[IncidentPlan] = Field(default_factory=list)


class RegionScenario(_Strict):
    title: str = Field(min_length=1)
    seed: int = 0
    run_for: Offset = Field(default=600.0, description="scenario time the simulation runs")
    cities: dict[str, CityPlay] = Field(min_length=1, description="adapter id -> its play")

    @field_validator("run_for", mode="before")
    @classmethod
    def _offset(cls, value: Any) -> float:
        return offset_s(value)

    @model_validator(mode="after")
    def _names_and_references(self) -> RegionScenario:
        seen: dict[str, float] = {}
        everything = sorted(
            (plan for play in self.cities.values() for plan in play.incidents),
            key=lambda p: p.at,
        )
        for plan in everything:
            if plan.name in seen:
                raise ValueError(f"incident name '{plan.name}' is used twice")
            for ref in plan.references:
                if ref not in seen:
                    raise ValueError(
                        f"incident '{plan.name}' references '{ref}', not sent before it"
                    )
            seen[plan.name] = plan.at
        return self

    def incidents(self) -> list[tuple[str, IncidentPlan]]:
        """Every (adapter id, incident), in the order they are sent."""
        found = [(city, plan) for city, play in self.cities.items() for plan in play.incidents]
        return sorted(found, key=lambda item: item[1].at)


def load_region_scenario(path: Path) -> RegionScenario:
    """Read a scenario; ``InvalidInput`` names the file, line and field of a mistake."""
    document, lines = load_yaml(path)
    if not isinstance(document, dict):
        raise InvalidInput(f"{path}: a scenario is a YAML mapping")
    try:
        return RegionScenario.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(describe_errors(path, exc, lines)) from None
