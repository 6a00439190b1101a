"""What-if: the same timeline through two sets of playbooks (or two registries), compared.

Both runs are drills on their own data directories, as fast as possible. The comparison lists
what differs in the outcomes: tasks per jurisdiction, time to the first task per incident,
deadlines missed and escalations, resources requested, held and committed, and stock left.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.drills.player import Player
from hub.drills.timeline import Timeline


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    playbooks: Path
    registry_from: Path | None = None
    registry_demo: bool = False


def outcomes(report: dict[str, Any]) -> dict[str, Any]:
    """The figures a comparison looks at, from an after-action report."""
    res = report["resources"]
    return {
        "tasks": report["tasks"],
        "tasks_per_jurisdiction": {c: p["tasks"] for c, p in report["jurisdictions"].items()},
        "time_to_first_task_s": report["time_to_first_task_s"],
        "deadlines_missed": report["deadlines_missed"],
        "escalations": report["escalations"],
        "escalations_per_jurisdiction": {
            c: p["escalations"] for c, p in report["jurisdictions"].items() if p["escalations"]
        },
        "resources_requested": res["requested"],
        "resources_held": res["held"],
        "resources_committed": res["committed"],
        "fill_rate": res["fill_rate"],
        "stock_left": {
            f"{s['depot']}/{s['item']}": s["on_hand"] - s["held"] for s in res["stock_left"]
        },
        "policy_refusals": len(report["policy_refusals"]),
    }


def differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Per figure that differs: ``{"a": ..., "b": ...}``; maps are compared key by key."""
    out: dict[str, Any] = {}
    for key in a:
        left, right = a[key], b.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            keys = sorted(set(left) | set(right))
            diff = {
                k: {"a": left.get(k), "b": right.get(k)}
                for k in keys
                if left.get(k) != right.get(k)
            }
            if diff:
                out[key] = diff
        elif left != right:
            out[key] = {"a": left, "b": right}
    return out


async def compare(
    timeline: Timeline, a: Variant, b: Variant, workdir: Path, drill: str
) -> dict[str, Any]:
    """Run ``timeline`` under both variants (``workdir/a``, ``workdir/b``) and compare."""
    runs: dict[str, dict[str, Any]] = {}
    for tag, variant in (("a", a), ("b", b)):
        player = Player(
            f"{drill}-{tag}", timeline, workdir / tag, variant.playbooks, speed=None,
            registry_from=variant.registry_from, registry_demo=variant.registry_demo,
        )  # fmt: skip
        status = await player.run()
        assert player.report is not None
        runs[tag] = {"variant": variant.name, "status": status, "outcomes": outcomes(player.report)}
    return {
        "timeline": timeline.name,
        "a": {"variant": runs["a"]["variant"], "outcomes": runs["a"]["outcomes"]},
        "b": {"variant": runs["b"]["variant"], "outcomes": runs["b"]["outcomes"]},
        "differences": differences(runs["a"]["outcomes"], runs["b"]["outcomes"]),
    }
