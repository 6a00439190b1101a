"""``liandong bench codecs``: decoding CAP XML and city JSON dialects, each against a baseline
measured in the same run, on one core.

What it measures, interleaved, in each of several runs (medians reported; ``runs`` keeps each):

1. ``cap_msgs_per_s``: ``hub.codecs.cap.decode_cap`` on a realistic CAP 1.2 message (~2.5 kB,
   Chinese and English info blocks, polygon, circle, geocodes): hardened parse, OASIS schema
   validation and the canonical ``Incident``.
2. ``cap_baseline_msgs_per_s``: the hardened lxml parse of the same bytes, nothing else (what
   any CAP reader pays), so ``cap_ratio`` shows what validation and mapping cost on top.
3. ``json_msgs_per_s``: ``Dialect.decode_incident`` of the Qingpu example dialect on its example
   message (``adapters/codecs/examples/``, ~1 kB): orjson, the compiled mapping, the Incident.
4. ``json_baseline_msgs_per_s``: ``orjson.loads`` + ``Incident.model_validate`` of the canonical
   JSON of the same incident: the floor any JSON intake pays; ``json_ratio`` shows the mapping.

Targets (from the issue): ``cap_msgs_per_s`` ≥ 2,000, ``json_msgs_per_s`` ≥ 20,000;
``meets_targets`` says whether this run met them. Every loop is bounded by time; nothing runs
in another process. The machine may be shared: ``loadavg_1m_at_start`` is reported with the
figures.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from adapters.codecs.dialect import Dialect
from hub.codecs.cap import decode_cap, encode_cap
from hub.codecs.cap_xml import parse
from hub.model.incident import Incident

EXAMPLES = Path(__file__).resolve().parent.parent / "adapters" / "codecs" / "examples"
TARGETS = {"cap_msgs_per_s": 2_000.0, "json_msgs_per_s": 20_000.0}
FIGURES = ("cap_msgs_per_s", "cap_baseline_msgs_per_s", "json_msgs_per_s",
           "json_baseline_msgs_per_s")  # fmt: skip


@dataclass(frozen=True)
class Plan:
    """How big a benchmark is."""

    runs: int
    seconds: float  # per figure per run
    warmup: int  # calls before each measurement


FULL = Plan(runs=5, seconds=1.0, warmup=200)
QUICK = Plan(runs=3, seconds=0.15, warmup=50)


def cap_message(incident: Incident) -> bytes:
    """A realistic CAP 1.2 message (~2.5 kB): the incident and a short English info block."""
    info = incident.info[0]
    english = info.model_copy(
        update={
            "language": "en-US",
            "event": "Water pollution",
            "headline": "Chemical spill upstream of the Jinze water intake on the Taipu River",
            "description": None,
            "instruction": "Jinze intake: stop drawing water. Keep away from the river.",
            "eventCode": [],
            "parameter": [],
            "area": [info.area[0].model_copy(update={"polygon": [], "circle": []})],
        }
    )
    return encode_cap(incident.model_copy(update={"info": [info, english]}))


def rate(call: Callable[[], object], seconds: float, warmup: int) -> float:
    """Calls per second of ``call``, over at least ``seconds`` after ``warmup`` calls."""
    for _ in range(warmup):
        call()
    count, batch = 0, 50
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(batch):
            call()
        count += batch
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def one_run(plan: Plan, work: dict[str, Callable[[], object]]) -> dict[str, float]:
    return {name: round(rate(call, plan.seconds, plan.warmup), 1) for name, call in work.items()}


def run(quick: bool = False) -> dict[str, Any]:
    """Run the benchmark; returns its figures (medians over the runs, and every run's own)."""
    plan = QUICK if quick else FULL
    started = time.monotonic()
    load_at_start = round(os.getloadavg()[0], 2)
    dialect = Dialect.load(EXAMPLES / "qingpu.yaml")
    native = (EXAMPLES / "qingpu_incident.json").read_bytes()
    incident = dialect.decode_incident(native)
    canonical = incident.model_dump_json(exclude_none=True).encode()
    cap = cap_message(incident)
    if decode_cap(cap).info[0] != incident.info[0]:
        raise RuntimeError("the CAP message does not decode to the incident it was made from")
    if Incident.model_validate(orjson.loads(canonical)) != incident:
        raise RuntimeError("the canonical JSON does not decode to the dialect's incident")
    work: dict[str, Callable[[], object]] = {
        "cap_msgs_per_s": lambda: decode_cap(cap),
        "cap_baseline_msgs_per_s": lambda: parse(cap),
        "json_msgs_per_s": lambda: dialect.decode_incident(native),
        "json_baseline_msgs_per_s": lambda: Incident.model_validate(orjson.loads(canonical)),
    }
    runs = [one_run(plan, work) for _ in range(plan.runs)]
    out: dict[str, Any] = {"benchmark": "codecs"}
    for key in FIGURES:
        out[key] = round(statistics.median(r[key] for r in runs), 1)
    out["cap_ratio"] = round(out["cap_msgs_per_s"] / out["cap_baseline_msgs_per_s"], 4)
    out["json_ratio"] = round(out["json_msgs_per_s"] / out["json_baseline_msgs_per_s"], 4)
    out.update(
        {
            "targets": TARGETS,
            "meets_targets": {key: out[key] >= target for key, target in TARGETS.items()},
            "cap_message_bytes": len(cap),
            "json_message_bytes": len(native),
            "canonical_json_bytes": len(canonical),
            "dialect": dialect.name,
            "quick": quick,
            "runs_count": plan.runs,
            "seconds_per_figure": plan.seconds,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_1m_at_start": load_at_start,
            "elapsed_s": round(time.monotonic() - started, 1),
            "runs": {key: [r[key] for r in runs] for key in FIGURES},
        }
    )
    return out
