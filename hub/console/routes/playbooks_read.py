"""``GET /api/v1/playbooks``: the active playbooks, read-only, with their cases.

What the hub loaded at start (``LIANDONG_PLAYBOOKS``): each playbook's spec as written (id,
version, title, owners, trigger, conditions, steps) and the cases beside it (name, whether it
must match, the tasks it must give). Changing a playbook is a release, not a console action.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from hub.console.auth import CurrentActor, CurrentHub
from hub.engine.cases import cases_path, load_cases
from hub.engine.playbook import Playbook
from hub.engine.source import PlaybookError

router = APIRouter(prefix="/api/v1/playbooks", tags=["console"])


def _cases(playbook: Playbook) -> dict[str, Any]:
    path = cases_path(Path(playbook.source))
    if not path.exists():
        return {"cases": [], "problem": f"no cases: {path.name} is missing"}
    try:
        _, parsed = load_cases(path)
    except PlaybookError as exc:
        return {"cases": [], "problem": str(exc)}
    return {
        "cases": [
            {
                "name": case.name,
                "matched": case.expect.matched,
                "tasks": [t.model_dump(mode="json", exclude_none=True) for t in case.expect.tasks],
            }
            for case in parsed.cases
        ]
    }


def _playbooks_json(playbooks: list[Playbook]) -> bytes:
    return orjson.dumps(
        {
            "playbooks": [
                {
                    **p.spec.model_dump(mode="json", exclude_none=True),
                    "file": Path(p.source).name,
                    **_cases(p),
                }
                for p in sorted(playbooks, key=lambda p: p.id)
            ]
        }
    )


@router.get("")
async def list_playbooks(request: Request, hub: CurrentHub, actor: CurrentActor) -> Response:
    cached: bytes | None = getattr(request.app.state, "playbooks_json", None)
    if cached is None:
        cached = _playbooks_json(hub.playbooks)
        request.app.state.playbooks_json = cached
    return Response(cached, media_type="application/json")
