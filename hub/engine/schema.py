"""The playbook format as a JSON Schema (``hub/engine/schemas/playbook.schema.json``).

Generated from the pydantic models of :mod:`hub.engine.playbook` and the operator table, so the
schema cannot drift from the loader (a test compares the committed file with this). Editors use
it to complete and check playbooks (``# yaml-language-server: $schema=...``); the loader stays the
authority, because some rules (a zone that exists, a jurisdiction of the region) need the repo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from hub.engine.catalogue import ITEMS
from hub.engine.operators import OPERATORS
from hub.engine.playbook import PlaybookSpec

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "playbook.schema.json"
_CONDITION = {"$ref": "#/$defs/Condition"}


def _condition() -> dict[str, Any]:
    def single(key: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {
            "type": "object",
            "description": description,
            "properties": {key: schema},
            "required": [key],
            "additionalProperties": False,
        }

    listed = {"type": "array", "items": _CONDITION, "minItems": 1}
    options = [
        single("all", listed, "every condition holds"),
        single("any", listed, "at least one condition holds"),
        single("not", _CONDITION, "the condition does not hold"),
    ]
    options += [single(op.name, op.schema, op.summary) for op in OPERATORS.values()]
    return {
        "description": "a mapping with one key: all, any, not, or an operator",
        "oneOf": options,
    }


def playbook_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a playbook file."""
    schema = PlaybookSpec.model_json_schema()
    defs = schema.setdefault("$defs", {})
    defs["Condition"] = _condition()
    combined = {
        "description": "how the conditions combine: all, any or not",
        "oneOf": _condition()["oneOf"][:3],
    }
    schema["properties"]["conditions"] = combined
    when = defs["Step"]["properties"]["when"]
    defs["Step"]["properties"]["when"] = {**_CONDITION, "description": when["description"]}
    defs["ItemLine"]["properties"]["item"]["enum"] = sorted(ITEMS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://liandong.invalid/schemas/playbook.schema.json",
        **schema,
    }


def rendered() -> bytes:
    """The schema as the committed file holds it."""
    return (
        orjson.dumps(playbook_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
