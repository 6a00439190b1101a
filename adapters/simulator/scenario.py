"""Scenario files: timed injects (incidents, updates, cancels) and how each city answers tasks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML


@dataclass(frozen=True)
class Inject:
    at_s: float
    sender: str
    name: str
    message: dict[str, Any]
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Responder:
    ack_after_s: float = 3.0
    silent: bool = False


@dataclass(frozen=True)
class Scenario:
    title: str
    injects: tuple[Inject, ...]
    responders: dict[str, Responder] = field(default_factory=dict)


def load_scenario(path: Path) -> Scenario:
    doc = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    injects = tuple(
        sorted(
            (
                Inject(
                    at_s=float(item["at"]),
                    sender=str(item["from"]),
                    name=str(item["name"]),
                    message=dict(item["message"]),
                    references=tuple(item.get("references", ())),
                )
                for item in doc["injects"]
            ),
            key=lambda i: i.at_s,
        )
    )
    responders = {
        str(code): Responder(float(spec.get("ack_after_s", 3.0)), bool(spec.get("silent", False)))
        for code, spec in (doc.get("responders") or {}).items()
    }
    return Scenario(title=str(doc["title"]), injects=injects, responders=responders)
