"""The after-action report of a drill, computed from its log (pure).

Per jurisdiction asked to act: tasks, time to acknowledge and to accept (median and worst),
deadlines missed (tasks escalated at least once), escalations, declines, cancellations. Per
incident: time to the first task. Resources: what was requested, held, committed, refused
(each refusal with the policy's reason and clause), the fill rate, shortfalls per item, and the
stock left at the end. Times are in seconds of virtual time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from statistics import median
from typing import Any

from hub.model.envelope import parse_time

_ACK = "task.acknowledged"
_ACCEPT = "task.accepted"


def _seconds(values: Sequence[int]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "max": None}
    return {"median": round(median(values) / 1000, 3), "max": round(max(values) / 1000, 3)}


def build(
    envelopes: Iterable[dict[str, Any]],
    stock_left: Sequence[dict[str, Any]] = (),
    *,
    drill: str | None = None,
) -> dict[str, Any]:
    """The report over a drill's events (decoded envelopes, in log order)."""
    issued: dict[str, tuple[str, int]] = {}  # task -> (target, issued ms)
    reported: dict[str, int] = {}  # thread -> first received ms
    first_task: dict[str, int] = {}
    ack: dict[str, list[int]] = defaultdict(list)
    accept: dict[str, list[int]] = defaultdict(list)
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    escalated: set[str] = set()
    requested: dict[str, int] = defaultdict(int)
    held: dict[str, int] = defaultdict(int)
    committed: dict[str, int] = defaultdict(int)
    refused_qty: dict[str, int] = defaultdict(int)
    refusals: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    for env in envelopes:
        kind, data = env["type"], env.get("data") or {}
        if kind == "incident.reported":
            thread = data["thread"]
            reported.setdefault(thread, parse_time(data["received"]))
        elif kind == "task.issued":
            task = data["task"]
            at = parse_time(task["issued"])
            issued[task["id"]] = (task["target"], at)
            per[task["target"]]["tasks"] += 1
            thread = task["incident"]
            first_task[thread] = min(first_task.get(thread, at), at)
        elif kind.startswith("task.") and "task" in data and data["task"] in issued:
            target, at = issued[data["task"]]
            when = parse_time(data["at"])
            if kind == _ACK:
                ack[target].append(when - at)
            elif kind == _ACCEPT:
                accept[target].append(when - at)
            elif kind == "task.escalated":
                per[target]["escalations"] += 1
                if data["task"] not in escalated:
                    escalated.add(data["task"])
                    per[target]["deadlines_missed"] += 1
            elif kind in ("task.declined", "task.cancelled"):
                per[target][kind.removeprefix("task.")] += 1
        elif kind == "stock.held":
            requested[data["item"]] += data["quantity"]
            held[data["item"]] += data["quantity"]
        elif kind == "stock.committed":
            committed[data["item"]] += data["quantity"]
        elif kind == "stock.refused":
            requested[data["item"]] += data["quantity"]
            refused_qty[data["item"]] += data["quantity"]
            refusals.append({
                "request": data["request"], "depot": data["depot"], "item": data["item"],
                "quantity": data["quantity"], "partner": data["partner"],
                "reason": data["reason"], "clause": data.get("clause"),
            })  # fmt: skip
        elif kind == "evaluation.failed":
            failures.append({k: data.get(k) for k in ("incident", "playbook", "reason")})
    jurisdictions = {}
    for code in sorted(per):
        counts = per[code]
        jurisdictions[code] = {
            "tasks": counts["tasks"],
            "acknowledged": len(ack[code]),
            "accepted": len(accept[code]),
            "time_to_acknowledge_s": _seconds(ack[code]),
            "time_to_accept_s": _seconds(accept[code]),
            "deadlines_missed": counts["deadlines_missed"],
            "escalations": counts["escalations"],
            "declined": counts["declined"],
            "cancelled": counts["cancelled"],
        }
    to_first = {t: first_task[t] - reported[t] for t in sorted(first_task) if t in reported}
    total_requested = sum(requested.values())
    total_held = sum(held.values())
    return {
        "drill": drill,
        "incidents": len(reported),
        "tasks": len(issued),
        "time_to_first_task_s": {t: round(ms / 1000, 3) for t, ms in to_first.items()},
        "deadlines_missed": sum(p["deadlines_missed"] for p in jurisdictions.values()),
        "escalations": sum(p["escalations"] for p in jurisdictions.values()),
        "jurisdictions": jurisdictions,
        "resources": {
            "requested": dict(sorted(requested.items())),
            "held": dict(sorted(held.items())),
            "committed": dict(sorted(committed.items())),
            "fill_rate": round(total_held / total_requested, 4) if total_requested else None,
            "shortfalls": dict(sorted(refused_qty.items())),
            "stock_left": list(stock_left),
        },
        "policy_refusals": refusals,
        "evaluation_failures": failures,
    }
