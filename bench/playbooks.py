"""``liandong bench playbooks``: matching and planning, in-process, on one core.

What it runs, for each of several runs (two with ``quick``), in this process:

1. **incidents_per_s**: ``hub.engine.evaluator.plan`` over already decoded incidents against 50
   playbooks (the region's nine, and 41 variants of them moved to other categories, event
   keywords and thresholds, so each category has several) and the full region (71 districts,
   every agreement): matching, targets, authority, tasks with their why.
2. **baseline_per_s**: the same incidents through one trivial playbook with a single condition
   (``severity_at_least: Extreme``, one task to districts within 5 km), measured in the same run:
   ``ratio`` = incidents_per_s / baseline_per_s is what 50 real playbooks cost over one.
3. **prepare_per_s**: what a planner worker does per record: decode the ``incident.reported``
   bytes, plan, render task rows and event bytes (``hub.engine.planning.prepare``);
   ``decode_per_s`` is the decoding alone.

The incidents are a fixed pseudo-random day over the whole region (seeded): a district, a point
within ~5 km of its centre, a category with an event text of that kind, a severity. Two mixes:
the **day** (Minor 60 %, Moderate 30 %, Severe 8 %, Extreme 2 %: still heavier than the reports
of an ordinary day) gives the headline figures; the **stress** mix (35/30/25/10 %) is reported
under ``stress``, with ``matched_only_per_s``, the rate over only the incidents some playbook
matched (the worst case: each needs a spatial query for its targets and builds tasks).
``matched_per_incident`` and ``tasks_per_incident`` say how much work each mix asks for.
Figures are medians over runs; ``*_per_cpu_s`` count this process's CPU time instead of the wall
clock, which other work on a shared machine stretches.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

from hub.engine.evaluator import plan
from hub.engine.planning import prepare
from hub.engine.playbook import Playbook, compile_playbook, load_playbooks, playbook_files
from hub.engine.source import Document, read_yaml
from hub.engine.spatial import load_zones
from hub.model.envelope import Lane, derived_id, format_time, parse_time
from hub.model.events import IncidentReported, decode, make_event
from hub.model.incident import Incident
from hub.region import Region, load_region

REPO = Path(__file__).resolve().parent.parent
PLAYBOOKS = REPO / "playbooks"
SEED = 20260701
SENT = "2026-07-01T08:30:00+08:00"

_EVENTS: dict[str, tuple[str, ...]] = {
    "Env": ("河道化学品泄漏", "水体油污", "太浦河水质异常"),
    "Fire": ("工业园区厂房火灾", "民房火灾", "开发区仓库火灾"),
    "Transport": ("高速危化品槽罐车侧翻", "多车追尾", "公交车事故"),
    "Met": ("台风红色预警", "暴雨内涝", "强对流大风"),
    "Safety": ("古镇客流拥挤", "建筑工地坍塌", "商场人群拥挤"),
    "Rescue": ("游船倾覆人员落水", "人员溺水", "被困人员搜救"),
    "Health": ("聚集性疫情", "食物中毒", "传染病病例"),
    "Geo": ("地面塌陷", "堤防渗漏"),
    "Infra": ("桥梁垮塌", "大面积停电", "供水管爆裂"),
    "CBRNE": ("危化品储罐泄漏", "放射源丢失"),
    "Security": ("群体性事件",),
}
_CATEGORY_WEIGHTS = {
    "Fire": 18, "Transport": 18, "Safety": 14, "Met": 10, "Env": 10, "Rescue": 8, "Health": 6,
    "Infra": 6, "Geo": 4, "CBRNE": 3, "Security": 3,
}  # fmt: skip
_SEVERITIES = ("Minor", "Moderate", "Severe", "Extreme")
DAY = (60, 30, 8, 2)  # a heavy day: most reports are minor and local
STRESS = (35, 30, 25, 10)  # a storm day: every third incident Severe or Extreme

TRIVIAL = {
    "id": "trivial",
    "version": 1,
    "title": {"zh": "基线", "en": "baseline"},
    "owners": ["bench"],
    "trigger": {"events": ["incident.reported"]},
    "conditions": {"all": [{"severity_at_least": "Extreme"}]},
    "steps": [
        {
            "id": "tell",
            "task": {
                "targets": {"within_km": 5},
                "action": {"zh": "通报", "en": "notice"},
                "ack_deadline": "PT30M",
            },
        }
    ],
}


def incidents(region: Region, count: int, severities: Sequence[int] = DAY) -> list[Incident]:
    """``count`` incidents over the whole region, the same ones every time."""
    rng = random.Random(SEED)
    districts = region.districts()
    categories = list(_CATEGORY_WEIGHTS)
    weights = list(_CATEGORY_WEIGHTS.values())
    out = []
    for i in range(count):
        district = rng.choice(districts)
        lat = district.centroid[0] + rng.uniform(-0.045, 0.045)
        lon = district.centroid[1] + rng.uniform(-0.05, 0.05)
        category = rng.choices(categories, weights)[0]
        info = {
            "language": "zh-CN",
            "category": [category],
            "event": rng.choice(_EVENTS[category]),
            "urgency": rng.choice(("Immediate", "Expected")),
            "severity": rng.choices(_SEVERITIES, severities)[0],
            "certainty": "Observed",
            "area": [
                {
                    "areaDesc": district.name_zh,
                    "circle": [f"{lat:.4f},{lon:.4f} {rng.choice((0.2, 0.5, 1, 2, 5))}"],
                }
            ],
        }
        message = {
            "identifier": f"bench-{i:06d}",
            "sender": district.code,
            "sent": SENT,
            "status": "Actual",
            "msgType": "Alert",
            "scope": "Public",
            "info": [info],
        }
        out.append(Incident.model_validate(message))
    return out


def reported_bytes(incident: Incident, received_ms: int) -> bytes:
    """The ``incident.reported`` record the intake would append for this incident."""
    payload = IncidentReported(
        incident=incident, thread=incident.key, version=1, received=format_time(received_ms)
    )
    return make_event(
        "incident.reported",
        payload,
        id=derived_id("incident.reported", incident.key),
        source="/liandong/bench",
        time=format_time(received_ms),
        jurisdiction=incident.sender,
        correlationid=incident.key,
    ).encode()


def fifty_playbooks(region: Region) -> list[Playbook]:
    """The region's nine playbooks and 41 variants of its eight specific ones, 50 in all.

    A variant is another specific playbook: it keeps its base's conditions and steps, but is
    moved to another category, asks for an event of that category by a keyword of its own, and
    has its own severity threshold; so, as in a real set, each incident interests a few
    playbooks and is matched by one or two, not by fifty (deterministic)."""
    zones = load_zones(PLAYBOOKS / "zones")
    documents = [read_yaml(p) for p in playbook_files(PLAYBOOKS)]
    specific = [d for d in documents if not d.data.get("fallback")]
    books = load_playbooks(PLAYBOOKS, region)
    categories = sorted(_EVENTS)
    severities = ("Moderate", "Severe", "Extreme")
    k = 0
    while len(books) < 50:
        base = specific[k % len(specific)]
        category = categories[k % len(categories)]
        words = _EVENTS[category]
        keyword = words[(k // len(categories)) % len(words)][:4]
        data = deepcopy(base.data)
        data["id"] = f"{data['id']}-variant-{k:02d}"
        _retarget(data["conditions"], category, severities[k % 3])
        data["conditions"] = {"all": [{"event_matches": keyword}, data["conditions"]]}
        books.append(compile_playbook(Document(f"{base.file}#{k}", data), zones, region))
        k += 1
    return books


def _retarget(node: Any, category: str, severity: str) -> None:
    if isinstance(node, list):
        for item in node:
            _retarget(item, category, severity)
    elif isinstance(node, dict):
        if "category_in" in node:
            node["category_in"] = [category]
        if "severity_at_least" in node:
            node["severity_at_least"] = severity
        for value in node.values():
            _retarget(value, category, severity)


_CPU: dict[str, list[float]] = {}


def _rate(count: int, work: Callable[[], object], name: str = "") -> float:
    """Items per wall-clock second; per CPU second of this process goes to ``_CPU[name]`` (a
    shared machine slows the wall clock, not the CPU time the work itself takes)."""
    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    work()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    if name:
        _CPU.setdefault(name, []).append(count / cpu)
    return count / wall


def _plan_all(batch: Sequence[Incident], books: Sequence[Playbook], region: Region) -> list[int]:
    received = parse_time(SENT)
    return [
        len(
            plan(
                i,
                thread=i.key,
                cause="bench",
                reported_ms=received,
                lane=Lane.ACTUAL,
                playbooks=books,
                region=region,
            ).tasks
        )
        for i in batch
    ]


def _matched(
    batch: Sequence[Incident], books: Sequence[Playbook], region: Region
) -> list[Incident]:
    return [
        i
        for i in batch
        if plan(
            i,
            thread=i.key,
            cause="bench",
            reported_ms=0,
            lane=Lane.ACTUAL,
            playbooks=books,
            region=region,
        ).verdicts
    ]


def run(quick: bool = False) -> dict[str, Any]:
    region = load_region()
    count, runs = (3_000, 2) if quick else (20_000, 5)
    batch = incidents(region, count, DAY)
    heavy = incidents(region, count, STRESS)
    records = [reported_bytes(i, parse_time(SENT)) for i in batch]
    books = fifty_playbooks(region)
    trivial = [compile_playbook(Document("trivial", TRIVIAL), {}, region)]
    tasks = _plan_all(batch, books, region)  # warm-up: border cells, authority caches
    heavy_tasks = _plan_all(heavy, books, region)
    _plan_all(batch, trivial, region)
    matched = _matched(batch, books, region)
    heavy_matched = _matched(heavy, books, region)
    figures: dict[str, list[float]] = {
        "plan": [], "baseline": [], "prepare": [], "decode": [], "stress": [], "matched": []
    }  # fmt: skip
    for _ in range(runs):
        figures["plan"].append(_rate(count, lambda: _plan_all(batch, books, region), "plan"))
        figures["baseline"].append(_rate(count, lambda: _plan_all(batch, trivial, region)))
        figures["prepare"].append(
            _rate(count, lambda: [prepare(r, Lane.ACTUAL, books, region) for r in records])
        )
        figures["decode"].append(_rate(count, lambda: [decode(r) for r in records]))
        figures["stress"].append(_rate(count, lambda: _plan_all(heavy, books, region), "stress"))
        figures["matched"].append(
            _rate(len(heavy_matched), lambda: _plan_all(heavy_matched, books, region))
        )
    median = {k: round(statistics.median(v), 1) for k, v in figures.items()}
    return {
        "benchmark": "playbooks",
        "incidents_per_s": median["plan"],
        "incidents_per_cpu_s": round(statistics.median(_CPU.pop("plan")), 1),
        "baseline_per_s": median["baseline"],
        "ratio": round(median["plan"] / median["baseline"], 3),
        "prepare_per_s": median["prepare"],
        "decode_per_s": median["decode"],
        "playbooks": len(books),
        "jurisdictions": len(region.jurisdictions),
        "districts": len(region.districts()),
        "agreements": len(region.agreements),
        "incidents": count,
        "matched_per_incident": round(len(matched) / count, 3),
        "tasks_per_incident": round(sum(tasks) / count, 3),
        "stress": {
            "severities": dict(zip(_SEVERITIES, STRESS, strict=True)),
            "incidents_per_s": median["stress"],
            "incidents_per_cpu_s": round(statistics.median(_CPU.pop("stress")), 1),
            "matched_per_incident": round(len(heavy_matched) / count, 3),
            "tasks_per_incident": round(sum(heavy_tasks) / count, 3),
            "matched_only_per_s": median["matched"],
        },
        "severities": dict(zip(_SEVERITIES, DAY, strict=True)),
        "runs": {k: [round(x, 1) for x in v] for k, v in figures.items()},
        "runs_count": runs,
        "quick": quick,
        "cpus": 1,
        "what": (
            "in-process matching and planning of decoded incidents (one thread); "
            "prepare = decode + plan + render task rows and events"
        ),
    }
