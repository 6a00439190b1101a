"""Derive the JSON Schemas under ``docs/schemas/`` from the hub's pydantic models.

``docs/asyncapi.yaml`` refers to these files for every message payload, so the interface document
describes exactly what the code decodes. Run from the repository root after changing a model::

    .venv/bin/python scripts/gen_schemas.py            # writes docs/schemas/
    .venv/bin/python scripts/gen_schemas.py --check    # exit 1 if a committed file differs

What it writes:

* ``events/<type>.json``, one per CloudEvents type in ``hub.model.events.EVENT_TYPES``: the
  envelope (``hub.model.envelope.Envelope``) with ``type`` fixed and ``data`` replaced by the
  schema of that type's payload model. Each file is self-contained.
* ``mqtt/*.json``, the payloads a city system exchanges with the hub's MQTT link: the canonical
  incident (CAP 1.2 as JSON), the task, the answer to a task
  (``adapters.links.mqtt_protocol.TaskAnswer``) and the link status.

The schemas are JSON Schema draft-07, the dialect the AsyncAPI 3.0 Schema Object extends:
pydantic's ``$defs`` become ``definitions``. Draft-07 ignores the siblings of a ``$ref``, so the
generator refuses any sibling that would constrain a value (annotations such as ``description``
and ``default`` are harmless).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.links.mqtt_protocol import OFFLINE, ONLINE, TaskAnswer  # noqa: E402
from hub.model.envelope import Envelope  # noqa: E402
from hub.model.events import EVENT_TYPES  # noqa: E402
from hub.model.incident import Incident  # noqa: E402
from hub.model.task import Task  # noqa: E402

OUT = ROOT / "docs" / "schemas"
DRAFT_07 = "http://json-schema.org/draft-07/schema#"
# Keywords that may stand beside a "$ref" because they never reject a value.
ANNOTATIONS = frozenset({"$comment", "default", "description", "examples", "title"})
MQTT_STATUSES = (ONLINE.decode(), OFFLINE.decode())


def _draft07(node: Any) -> Any:
    """Pydantic's 2020-12 spelling of local definitions, rewritten for draft-07."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                value = value.replace("#/$defs/", "#/definitions/")
            out["definitions" if key == "$defs" else key] = _draft07(value)
        return out
    if isinstance(node, list):
        return [_draft07(item) for item in node]
    return node


def _check_refs(node: Any, where: str) -> None:
    if isinstance(node, dict):
        if "$ref" in node and set(node) - ANNOTATIONS - {"$ref"}:
            extra = sorted(set(node) - ANNOTATIONS - {"$ref"})
            raise SystemExit(f"{where}: a $ref with constraining siblings {extra} (draft-07)")
        for key, value in node.items():
            _check_refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _check_refs(item, f"{where}/{i}")


def _merge_definitions(into: dict[str, Any], more: dict[str, Any], where: str) -> None:
    for name, schema in more.items():
        if name in into and into[name] != schema:
            raise SystemExit(f"{where}: two different definitions named {name}")
        into[name] = schema


def _document(schema: dict[str, Any], title: str, description: str) -> dict[str, Any]:
    head = {"$schema": DRAFT_07, "title": title, "description": description}
    body = {k: v for k, v in schema.items() if k not in ("title", "description", "definitions")}
    doc = {**head, **body}
    if schema.get("definitions"):
        doc["definitions"] = dict(sorted(schema["definitions"].items()))
    _check_refs(doc, title)
    return doc


def event_schema(event_type: str, model: type[BaseModel]) -> dict[str, Any]:
    """The CloudEvent of ``event_type``: the envelope with its ``data`` described by ``model``."""
    envelope = _draft07(Envelope.model_json_schema())
    payload = _draft07(model.model_json_schema())
    definitions: dict[str, Any] = {}
    _merge_definitions(definitions, envelope.pop("definitions", {}), event_type)
    _merge_definitions(definitions, payload.pop("definitions", {}), event_type)
    props = dict(envelope["properties"])
    props["type"] = {"const": event_type, "title": "Type", "type": "string"}
    props["data"] = payload
    envelope["properties"] = props
    envelope["definitions"] = definitions
    about = " ".join((model.__doc__ or "").split())
    description = (
        f"A '{event_type}' event: a CloudEvents 1.0 envelope in structured JSON mode whose "
        f"'data' is the payload model {model.__name__}." + (f" {about}" if about else "")
    )
    return _document(envelope, event_type, description)


def model_schema(model: type[BaseModel], description: str) -> dict[str, Any]:
    return _document(_draft07(model.model_json_schema()), model.__name__, description)


def render() -> dict[str, str]:
    """Every schema file, relative path under ``docs/schemas/`` → its exact text."""
    docs: dict[str, dict[str, Any]] = {}
    for event_type, model in sorted(EVENT_TYPES.items()):
        docs[f"events/{event_type}.json"] = event_schema(event_type, model)
    docs["mqtt/incident.json"] = model_schema(
        Incident,
        "A canonical incident: a CAP 1.2 alert message rendered as JSON, with CAP's own element "
        "names and value formats; 'sender' is the GB/T 2260 code of the reporting jurisdiction.",
    )
    docs["mqtt/task.json"] = model_schema(
        Task, "A joint-response task as the hub sends it to its target jurisdiction."
    )
    docs["mqtt/task-update.json"] = model_schema(
        TaskAnswer,
        "A city system's answer to one of its tasks: 'answer' is the step of the task lifecycle "
        "it takes (acknowledge, then accept or decline, then done), applied as the HTTP API's "
        "'POST /api/v1/tasks/{id}/{answer}'; a decline should say why in 'reason'.",
    )
    docs["mqtt/status.json"] = {
        "$schema": DRAFT_07,
        "title": "LinkStatus",
        "description": "The retained state of a city system's MQTT connection: it publishes "
        "'online' when it connects, and its last will publishes 'offline' when it drops.",
        "type": "string",
        "enum": list(MQTT_STATUSES),
    }
    return {
        path: json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        for path, doc in sorted(docs.items())
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    wanted = render()
    existing = (
        {p.relative_to(OUT).as_posix() for p in OUT.rglob("*.json")} if OUT.exists() else set()
    )
    stale = sorted(existing - wanted.keys())
    differ = sorted(
        path
        for path, text in wanted.items()
        if not (OUT / path).exists() or (OUT / path).read_text(encoding="utf-8") != text
    )
    if args.check:
        for path in differ:
            print(f"out of date: docs/schemas/{path}", file=sys.stderr)
        for path in stale:
            print(f"no longer generated: docs/schemas/{path}", file=sys.stderr)
        return 1 if differ or stale else 0
    for path in stale:
        (OUT / path).unlink()
    for path in differ:
        target = OUT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(wanted[path], encoding="utf-8")
    print(f"docs/schemas: {len(differ)} written, {len(stale)} removed, {len(wanted)} in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
