"""The nine city adapters of the 1+8 region: every fixture, both ways, and their documentation.

For each adapter under ``adapters/cities/``: ``liandong adapter check`` passes (manifest,
jurisdiction, codec, every case); each native incident goes native → canonical → native and
comes back as the same document (where the format allows, else as the same incident); each task
goes canonical → native and the city's side reads back what the hub sent; each answer goes
native → canonical → native. Each dialect's README documents every native field its mapping
reads. The simulator's scenario fits every city's format.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest

from adapters.codecs.dialect import Dialect
from adapters.framework.codec import Codec, load_codec
from adapters.framework.discovery import Found, discover
from adapters.framework.fixtures import Case, check_adapter, load_cases, same_document
from adapters.framework.manifest import HttpTransport, KafkaTransport, MqttTransport
from adapters.framework.runner import task_targets
from adapters.links.mqtt_protocol import TaskAnswer
from adapters.simulator.behaviour import decide
from adapters.simulator.play import check_scenario
from adapters.simulator.region_scenario import Answers, load_region_scenario
from adapters.simulator.speech import HeardTask, Speech, speech_for
from hub.model.incident import Incident
from hub.region import load_region

REPO = Path(__file__).resolve().parents[2]
CITIES = REPO / "adapters" / "cities"
SCENARIO = REPO / "adapters" / "simulator" / "scenarios" / "region-day.yaml"
REGION = {
    "shanghai": "310000",
    "suzhou": "320500",
    "wuxi": "320200",
    "changzhou": "320400",
    "nantong": "320600",
    "jiaxing": "330400",
    "huzhou": "330500",
    "ningbo": "330200",
    "zhoushan": "330900",
}
# Where native -> canonical -> native cannot give back the same document, and why.
NOT_SAME_DOCUMENT = {
    "ningbo": "the city writes its points in CGCS2000; the codec writes WGS-84 (they agree)",
    "zhoushan": "the city sends CAP 1.1; the hub writes CAP 1.2",
    "huzhou": "an EDXL-DE envelope is the sender's own; the city's side writes a new one",
}


def _adapters() -> dict[str, Found]:
    return {f.folder.name: f for f in discover([CITIES])}


ADAPTERS = _adapters()


def _cases(found: Found) -> list[Case]:
    assert found.manifest is not None
    return load_cases(found.folder / found.manifest.fixtures / "cases.yaml").cases


def _codec_and_speech(found: Found) -> tuple[Codec, Speech]:
    assert found.manifest is not None
    version: Literal["1.1", "1.2"] = "1.1" if found.folder.name == "zhoushan" else "1.2"
    return load_codec(found.manifest.codec, found.folder), speech_for(
        found.manifest.codec, found.folder, version
    )


def _read(found: Found, name: str) -> bytes:
    assert found.manifest is not None
    return (found.folder / found.manifest.fixtures / name).read_bytes()


def _inbound(found: Found, codec: Codec, *, answers: bool) -> list[Case]:
    """The inbound cases whose native message is an answer (or an incident)."""
    cases = [c for c in _cases(found) if c.inbound is not None]
    decoded = [codec.decode(_read(found, c.inbound or ""), c.channel) for c in cases]
    return [c for c, d in zip(cases, decoded, strict=True) if isinstance(d, TaskAnswer) == answers]


def test_one_adapter_per_city_of_the_region_with_the_city_code() -> None:
    assert set(ADAPTERS) == set(REGION)
    for name, found in ADAPTERS.items():
        assert found.manifest is not None, found.error
        assert found.manifest.id == name
        assert found.manifest.jurisdiction == REGION[name]


def test_the_adapters_spread_over_transports_and_formats() -> None:
    kinds = set()
    for found in ADAPTERS.values():
        assert found.manifest is not None
        kinds.add((found.manifest.transport.kind, found.manifest.codec.kind))
    assert {
        ("http", "cap"),
        ("http", "edxl-de"),
        ("http", "dialect"),
        ("mqtt", "dialect"),
        ("kafka", "dialect"),
    } <= kinds
    mappings = [m for m in map(_mapping, ADAPTERS.values()) if m is not None]
    names = {Dialect.load(m).name for m in mappings}
    assert len(names) == len(mappings) >= 5, "each JSON city has a dialect of its own"


def _mapping(found: Found) -> Path | None:
    if found.manifest is None or found.manifest.codec.mapping is None:
        return None
    return found.folder / found.manifest.codec.mapping


@pytest.mark.parametrize("name", sorted(REGION))
def test_liandong_adapter_check_passes(name: str) -> None:
    found = ADAPTERS[name]
    assert found.manifest is not None
    checks = check_adapter(found, known_jurisdiction=load_region().is_known(REGION[name]))
    failed = [f"{c.name}: {c.problem}" for c in checks if not c.ok]
    assert not failed, "\n".join(failed)
    kinds = {("task" if c.task else c.channel) for c in _cases(found)}
    assert {"incidents", "task", "answers"} <= kinds, "fixtures for every direction"


@pytest.mark.parametrize("name", sorted(REGION))
def test_incidents_native_to_canonical_to_native(name: str) -> None:
    found = ADAPTERS[name]
    codec, speech = _codec_and_speech(found)
    incidents = _inbound(found, codec, answers=False)
    assert incidents, "at least one incident fixture"
    for case in incidents:
        native = _read(found, case.inbound or "")
        canonical = codec.decode(native, "incidents")
        assert isinstance(canonical, Incident)
        again = codec.encode_incident(canonical) or speech.incident(canonical)
        assert codec.decode(again, "incidents") == canonical, case.name
        # What the simulator sends for this city is what the adapter reads.
        assert codec.decode(speech.incident(canonical), "incidents") == canonical, case.name
        if name not in NOT_SAME_DOCUMENT:
            assert same_document(again, native) is None, (
                f"{case.name}: {same_document(again, native)}"
            )


@pytest.mark.parametrize("name", sorted(REGION))
def test_tasks_canonical_to_native_read_back_by_the_city(name: str) -> None:
    found = ADAPTERS[name]
    codec, speech = _codec_and_speech(found)
    for case in [c for c in _cases(found) if c.task]:
        task: dict[str, Any] = orjson.loads(_read(found, case.task or ""))
        native = codec.encode_task(task)
        assert same_document(native, _read(found, case.expect)) is None
        heard = speech.hear(native)
        assert heard == HeardTask(
            task_id=task["id"],
            state=task["state"],
            incident=task["incident"],
            target=task["target"],
            action=task["action_zh"],
            response=task["response"],
            sent=heard.sent,
        ), case.name
        # The task's issue time, to the precision the format keeps (whole seconds).
        issued = datetime.fromisoformat(task["issued"].replace("Z", "+00:00"))
        assert abs((datetime.fromisoformat(heard.sent) - issued).total_seconds()) < 1, case.name


@pytest.mark.parametrize("name", sorted(REGION))
def test_answers_native_to_canonical_to_native(name: str) -> None:
    found = ADAPTERS[name]
    codec, speech = _codec_and_speech(found)
    answers = _inbound(found, codec, answers=True)
    assert answers, "at least one answer fixture"
    for case in answers:
        native = _read(found, case.inbound or "")
        answer = codec.decode(native, case.channel)
        assert isinstance(answer, TaskAnswer)
        assert answer == TaskAnswer.model_validate_json(_read(found, case.expect))
        heard = HeardTask(answer.task, "issued", "", "", "", "accept", "2026-07-01T08:30:00+08:00")
        again = speech.answer(answer, heard, sender=REGION[name], sent="2026-07-01T09:00:00+08:00")
        assert codec.decode(again, "answers") == answer, case.name
        if found.manifest and found.manifest.codec.kind == "dialect":
            assert same_document(again, native) is None, case.name


def _native_paths(mapping: Path) -> set[str]:
    dialect = Dialect.load(mapping)
    paths: set[str] = set()
    for section in (dialect.spec.incident, dialect.spec.task, dialect.spec.answer):
        if section is None:
            continue
        paths.update(section.native_constants)
        for rule in section.fields.values():
            paths.update(p for p in (rule.from_, rule.point, rule.lat, rule.lon, rule.points) if p)
            if rule.radius is not None and rule.radius.from_:
                paths.add(rule.radius.from_)
    if dialect.spec.coordinates and dialect.spec.coordinates.datum:
        datum = dialect.spec.coordinates.datum.from_
        paths.update([datum] if datum else [])
    return paths


@pytest.mark.parametrize("name", sorted(REGION))
def test_each_readme_documents_what_the_city_sends_and_every_native_field(name: str) -> None:
    found = ADAPTERS[name]
    assert found.manifest is not None
    readme = (found.folder / "README.md").read_text(encoding="utf-8")
    assert found.manifest.jurisdiction in readme
    for heading in ("## What", "## How to connect"):
        assert heading in readme, f"{name}/README.md: no '{heading}' section"
    mapping = _mapping(found)
    if mapping is not None:
        missing = sorted(p for p in _native_paths(mapping) if f"`{p}`" not in readme)
        assert not missing, f"{name}/README.md does not document {missing}"


def test_a_city_adapter_receives_the_tasks_of_its_districts() -> None:
    suzhou = task_targets("320500")
    assert suzhou[0] == "320500" and {"320509", "320583"} <= set(suzhou)
    assert len(task_targets("310000")) == 17  # Shanghai and its 16 districts
    assert task_targets("320509") == ("320509",)  # a district's adapter: itself only


def test_an_mqtt_adapter_may_carry_a_json_dialect() -> None:
    mqtt = [
        f
        for f in ADAPTERS.values()
        if f.manifest and isinstance(f.manifest.transport, MqttTransport)
    ]
    assert {f.folder.name for f in mqtt} == {"suzhou", "jiaxing"}
    kafka = [
        f
        for f in ADAPTERS.values()
        if f.manifest and isinstance(f.manifest.transport, KafkaTransport)
    ]
    assert [f.folder.name for f in kafka] == ["ningbo"]
    http = [f.manifest.transport for f in ADAPTERS.values() if f.manifest]
    assert all(t.deliver for t in http if isinstance(t, HttpTransport)), "HTTP cities get tasks"


def test_the_region_day_scenario_fits_every_city() -> None:
    scenario = load_region_scenario(SCENARIO)
    assert set(scenario.cities) == set(REGION)
    assert check_scenario(scenario, [CITIES]) == []
    reporters = {city for city, _ in scenario.incidents()}
    assert reporters == set(REGION), "every city reports something"


def test_the_scenario_check_names_what_a_format_cannot_carry(tmp_path: Path) -> None:
    text = SCENARIO.read_text(encoding="utf-8")
    # Suzhou's dialect has no place for responseType; Jiaxing's fixes scope to Restricted.
    broken = text.replace(
        "              instruction: 下游取水口立即停止取水",
        "              responseType: [Avoid]\n              instruction: 下游取水口立即停止取水",
    ).replace(
        '        name: jiashan-park-fire\n        sender: "330421"',
        '        name: jiashan-park-fire\n        sender: "310118"',
    )
    assert broken != text
    path = tmp_path / "broken.yaml"
    path.write_text(broken, encoding="utf-8")
    problems = check_scenario(load_region_scenario(path), [CITIES])
    assert any("suzhou" in p and "pingwang-spill" in p and "responseType" in p for p in problems)
    assert any("jiaxing (330400) cannot report for 310118" in p for p in problems)


def test_answers_are_decided_by_the_seed_not_by_the_run() -> None:
    answers = Answers.model_validate(
        {
            "delay": {"kind": "lognormal", "median_s": 60, "sigma": 0.5},
            "decline": {"probability": 0.5, "reasons": ["a", "b"]},
            "silence": 0.2,
        }
    )
    keys = [dict(city="suzhou", incident=f"i{n}", target="320509", action="x") for n in range(40)]
    first = [decide(7, answers, **k) for k in keys]
    assert first == [decide(7, answers, **k) for k in keys]
    assert first != [decide(8, answers, **k) for k in keys]
    assert any(d.silent for d in first) and any(not d.silent for d in first)
    assert {d.decline_reason for d in first} == {None, "a", "b"}
    always = Answers.model_validate({"silence": 1.0})
    assert all(decide(1, always, **k).silent for k in keys)
    never = Answers.model_validate({"decline": {"probability": 1.0, "reasons": ["不可"]}})
    assert all(decide(1, never, **k).decline_reason == "不可" for k in keys)
