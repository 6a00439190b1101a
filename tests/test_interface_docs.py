"""``docs/asyncapi.yaml`` is a valid AsyncAPI 3.0 document and says what the code does.

Validated against the AsyncAPI 3.0.0 JSON Schema vendored in ``tests/schemas/`` (no network);
then checked against the code: every topic of ``hub.bus.topics`` and every MQTT kind is a
channel, every event type has a message, and the payload schemas under ``docs/schemas/`` are
what ``scripts/gen_schemas.py`` derives from the models now.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import orjson
import pytest
from ruamel.yaml import YAML

from adapters.links.mqtt_protocol import TaskAnswer
from hub.bus import topics
from hub.model.approvals import (
    APPROVAL_DECIDED_TYPES,
    APPROVAL_EXTENDED,
    APPROVAL_REQUESTED,
    ApprovalDecided,
    ApprovalExtended,
    ApprovalRequested,
    OnExpiry,
)
from hub.model.envelope import derived_id
from hub.model.events import (
    EVENT_TYPES,
    EvaluationFailed,
    EventDeadLettered,
    IncidentReported,
    IntakeRefused,
    TaskIssued,
    TaskUpdated,
    decode,
    make_event,
)
from hub.model.incident import Incident
from hub.model.resources import (
    RESOURCE_LINE_MOVED,
    STOCK_EVENT_TYPES,
    STOCK_LOW,
    STOCK_REFUSED,
    ResourceLineMoved,
    StockChanged,
    StockLow,
    StockRefused,
)
from hub.model.task import Task, TaskState, Why
from hub.region import load_region
from tests.factories import cap

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
ASYNCAPI = DOCS / "asyncapi.yaml"
ASYNCAPI_SCHEMA = Path(__file__).resolve().parent / "schemas" / "asyncapi-3.0.0.json"
SCHEMAS = DOCS / "schemas"

# The hub's side of each MQTT kind (hub/bus/topics.py): what goes up, what comes down.
MQTT_ACTIONS = {
    "incidents": "receive",
    "tasks": "send",
    "task-updates": "receive",
    "status": "receive",
}


@cache
def _doc() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(ASYNCAPI.read_text(encoding="utf-8"))
    return loaded


def _resolve(node: Any) -> Any:
    """Follow local ``$ref``s (``#/...``) until a node that is not a reference."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return node
        node = _doc()
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any, where: str = "#") -> list[tuple[str, str]]:
    """Every ``$ref`` value in the document, with where it stands (examples excluded)."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append((where, value))
            elif key != "examples":
                found.extend(_refs(value, f"{where}/{key}"))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found.extend(_refs(item, f"{where}/{i}"))
    return found


def _server_of(channel: dict[str, Any]) -> str:
    servers = [ref["$ref"] for ref in channel["servers"]]
    assert len(servers) == 1, f"channel {channel['address']} names {servers}"
    return servers[0].removeprefix("#/servers/")


def _channels_on(server: str) -> dict[str, dict[str, Any]]:
    return {
        name: channel
        for name, channel in _doc()["channels"].items()
        if _server_of(channel) == server
    }


def _messages() -> dict[str, dict[str, Any]]:
    return {name: _resolve(m) for name, m in _doc()["components"]["messages"].items()}


def _payload_file(message: dict[str, Any]) -> Path:
    ref = message["payload"]["$ref"]
    assert ref.startswith("./schemas/"), ref
    return DOCS / ref


@cache
def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_schemas", REPO / "scripts/gen_schemas.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations through it
    spec.loader.exec_module(module)
    return module


def _validator(path: Path) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(path.read_text(encoding="utf-8")))


# --- the document is valid AsyncAPI 3.0 -----------------------------------------------------------


def test_the_vendored_asyncapi_schema_is_the_recorded_file() -> None:
    readme = (ASYNCAPI_SCHEMA.parent / "README.md").read_text(encoding="utf-8")
    recorded = re.search(r"sha256 \| `([0-9a-f]{64})`", readme)
    assert recorded, "tests/schemas/README.md records the sha256 of the vendored file"
    assert hashlib.sha256(ASYNCAPI_SCHEMA.read_bytes()).hexdigest() == recorded.group(1)


def test_document_validates_against_the_asyncapi_3_schema() -> None:
    schema = json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    assert validator_class is jsonschema.Draft7Validator, "the schema declares draft-07"
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(_doc()), key=lambda e: list(e.path))
    assert _doc()["asyncapi"] == "3.0.0"
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {jsonschema.exceptions.best_match([e]).message}"
        for e in errors
    )


def test_every_reference_resolves() -> None:
    for where, ref in _refs(_doc()):
        if ref.startswith("#/"):
            _resolve({"$ref": ref})  # raises KeyError naming the missing part
        else:
            target = DOCS / ref.split("#")[0]
            assert target.is_file(), f"{where}: {ref} names no file under docs/"


def test_channel_parameters_match_their_address() -> None:
    # A rule of the specification that its JSON Schema cannot express.
    for name, channel in _doc()["channels"].items():
        in_address = set(re.findall(r"\{([^}]+)\}", channel["address"]))
        declared = set(channel.get("parameters", {}))
        assert in_address == declared, f"channel {name}: address {in_address}, params {declared}"


def test_operations_use_messages_of_their_own_channel() -> None:
    for name, operation in _doc()["operations"].items():
        channel_ref = operation["channel"]["$ref"]
        assert operation.get("messages"), f"operation {name} lists its messages"
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel_ref + "/messages/"), (name, message)


def test_info_version_is_the_package_version() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert _doc()["info"]["version"] == project["version"]


# --- the document says what the code does ---------------------------------------------------------


def test_every_kafka_topic_is_a_channel() -> None:
    addresses = [c["address"] for c in _channels_on("kafka").values()]
    assert sorted(addresses) == sorted(topics.ALL_TOPICS)
    for topic in topics.LIVE_TOPICS:
        assert topics.for_lane(topic, topics.Lane.EXERCISE) in addresses


def test_every_mqtt_kind_is_a_channel_with_a_jurisdiction_parameter() -> None:
    channels = _channels_on("mqtt")
    by_address = {c["address"]: c for c in channels.values()}
    expected = {topics.mqtt_topic("{jurisdiction}", kind): kind for kind in topics.MQTT_KINDS}
    assert set(by_address) == set(expected)
    for channel in channels.values():
        parameter = _resolve(channel["parameters"]["jurisdiction"])
        pattern = re.compile(parameter["x-pattern"])
        codes = list(load_region().jurisdictions)
        assert codes, "the region has jurisdictions"
        assert all(pattern.fullmatch(code) for code in codes), "every region code fits"
        assert all(pattern.fullmatch(code) for code in parameter["examples"])


def test_mqtt_operations_take_the_hub_side_with_qos_1_and_retain_only_status() -> None:
    doc = _doc()
    seen = set()
    for name, operation in doc["operations"].items():
        channel = _resolve(operation["channel"])
        if _server_of(channel) != "mqtt":
            continue
        kind = channel["address"].rsplit("/", 1)[1]
        seen.add(kind)
        assert operation["action"] == MQTT_ACTIONS[kind], name
        binding = _resolve(operation["bindings"])["mqtt"]
        assert binding["qos"] == 1, name
        assert binding["retain"] is (kind == "status"), name
    assert seen == set(topics.MQTT_KINDS)
    last_will = doc["servers"]["mqtt"]["bindings"]["mqtt"]["lastWill"]
    assert last_will["topic"] == topics.mqtt_topic("{jurisdiction}", "status")
    assert last_will["retain"] is True


def test_every_event_type_has_a_message_carried_on_kafka() -> None:
    cloud_events = {
        m["name"]: m
        for m in _messages().values()
        if any(
            _resolve(t).get("contentType") == "application/cloudevents+json"
            for t in m.get("traits", [])
        )
    }
    assert set(cloud_events) == set(EVENT_TYPES)
    carried = {
        _resolve(message)["name"]
        for channel in _channels_on("kafka").values()
        for message in channel["messages"].values()
    }
    sent = {
        _resolve({"$ref": ref["$ref"]})["name"]
        for op in _doc()["operations"].values()
        if op["action"] == "send" and _server_of(_resolve(op["channel"])) == "kafka"
        for ref in op["messages"]
    }
    for event_type, message in cloud_events.items():
        assert _payload_file(message) == SCHEMAS / "events" / f"{event_type}.json"
        assert event_type in carried, f"no Kafka channel carries {event_type}"
        assert event_type in sent, f"no operation of the hub sends {event_type}"
        assert "key" in _resolve(message["bindings"])["kafka"], f"{event_type}: key semantics"


def test_partitions_in_the_document_are_those_the_deployment_creates() -> None:
    binding = _doc()["components"]["channelBindings"]["topic"]["kafka"]
    script = (REPO / "deploy/kafka/create-topics.sh").read_text(encoding="utf-8")
    default = re.search(r'partitions="\$\{TOPIC_PARTITIONS:-(\d+)\}"', script)
    assert default, "create-topics.sh has a default partition count"
    assert binding["partitions"] == int(default.group(1))


# --- payload schemas: generated, current, and true to the models ----------------------------------


def test_schemas_are_what_the_generator_derives_from_the_models_now() -> None:
    wanted: dict[str, str] = _generator().render()
    committed = {p.relative_to(SCHEMAS).as_posix() for p in SCHEMAS.rglob("*.json")}
    hint = "run: .venv/bin/python scripts/gen_schemas.py"
    assert committed == set(wanted), f"files differ from the generator's; {hint}"
    for path, text in wanted.items():
        on_disk = (SCHEMAS / path).read_text(encoding="utf-8")
        assert on_disk == text, f"docs/schemas/{path} is out of date; {hint}"


def test_every_schema_file_is_referenced_and_is_valid_draft_07() -> None:
    referenced = {_payload_file(m) for m in _messages().values()}
    for path in sorted(SCHEMAS.rglob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.Draft7Validator.check_schema(schema)
        assert path in referenced, f"{path.relative_to(REPO)} is not used by docs/asyncapi.yaml"


def test_examples_fit_their_schema_and_the_models() -> None:
    checked = 0
    for name, message in _messages().items():
        validator = _validator(_payload_file(message))
        for example in message.get("examples", []):
            payload = example["payload"]
            validator.validate(payload)
            if message["name"] in EVENT_TYPES:
                decode(orjson.dumps(payload))
            elif name == "cityIncident":
                Incident.model_validate(payload)
            elif name == "cityTask":
                Task.model_validate(payload)
            elif name == "cityTaskAnswer":
                TaskAnswer.model_validate(payload)
            checked += 1
    assert checked >= 5


def _events() -> list[bytes]:
    """One real encoded event of every type, built the way the hub builds them."""
    incident = Incident.model_validate(cap("qp-2026-0701-001"))
    thread = incident.key
    task = Task(
        id=derived_id("cross-border-water-pollution", "1", thread, "protect-intakes", "320509"),
        incident=thread,
        sender="310118",
        target="320509",
        action_zh="关闭下游取水口",
        action_en="Close downstream water intakes",
        response="acknowledge",
        issued="2026-07-01T00:30:01.250Z",
        due="2026-07-01T01:00:01.250Z",
        why=Why(
            playbook="cross-border-water-pollution",
            version=1,
            step="protect-intakes",
            conditions=["category in [Env]"],
            agreement="yrd-demo-zone-emergency-linkage",
            clause="4",
            cause=derived_id("cause"),
        ),
    )
    payloads: dict[str, Any] = {
        "incident.reported": IncidentReported(
            incident=incident, thread=thread, version=1, received="2026-07-01T00:30:00.500Z"
        ),
        "task.issued": TaskIssued(task=task),
        "evaluation.failed": EvaluationFailed(incident=thread, playbook="p", reason="why"),
        "intake.refused": IntakeRefused(
            adapter="qingpu-cmd", credential_jurisdiction="310118", claimed="320509", reason="r"
        ),
        "event.deadlettered": EventDeadLettered(
            topic=topics.TASKS, offset=7, group="engine", reason="not JSON", payload="{"
        ),
    }
    for kind, event_type in STOCK_EVENT_TYPES.items():
        payloads[event_type] = StockChanged(
            entry=3,
            depot="330421-dep-1",
            jurisdiction="330421",
            item="sandbag",
            kind=kind,
            quantity=500,
            on_hand_delta=0,
            held_delta=500 if kind == "hold" else 0,
            actor="registry",
            at="2026-07-01T00:31:00.000Z",
            reason="a reason" if kind == "adjustment" else None,
            request="req-1",
            partner="310118",
            agreement="yrd-demo-zone-emergency-linkage",
            clause="5",
        )
    payloads[STOCK_REFUSED] = StockRefused(
        request="req-2",
        depot="330421-dep-1",
        jurisdiction="330421",
        item="sandbag",
        quantity=7500,
        partner="310118",
        reason="Jiashan County keeps a floor of 3,000 sandbags under clause 5",
        at="2026-07-01T00:31:00.000Z",
        agreement="yrd-demo-zone-emergency-linkage",
        clause="5",
    )
    payloads[STOCK_LOW] = StockLow(
        entry=8, depot="330421-dep-1", jurisdiction="330421", item="sandbag", free=890,
        minimum=900, at="2026-07-01T00:31:00.000Z",
    )  # fmt: skip
    payloads[RESOURCE_LINE_MOVED] = ResourceLineMoved(
        request="req-3", line=1, hold="h-1", depot="330421-dep-1", item="sandbag", quantity=300,
        requester="310118", owner="330421", previous="requisitioned", state="committed",
        answered=250, committed=200, message="CommitResource", actor="jiashan",
        at="2026-07-01T00:31:00.000Z",
    )  # fmt: skip
    for state in TaskState:
        if state is not TaskState.ISSUED:
            payloads[f"task.{state.value}"] = TaskUpdated(
                task=task.id,
                incident=thread,
                target="320509",
                previous=TaskState.ISSUED,
                state=state,
                by="320509",
                reason="because" if state is TaskState.DECLINED else None,
                at="2026-07-01T00:31:00.000Z",
            )
    approval = derived_id("infectious-disease-joint-control", "1", thread, "approve", "approval")
    payloads[APPROVAL_REQUESTED] = ApprovalRequested(
        approval=approval,
        incident=thread,
        playbook="infectious-disease-joint-control",
        version=1,
        step="coordinator-approves-passes",
        approver="regional_coordinator",
        question_zh="是否启动跨界通行证互认？",
        question_en="Start mutual recognition of cross-border passes?",
        expires="2026-07-01T02:30:00.500Z",
        on_expiry=OnExpiry.CANCEL,
        tasks=[task],
    )
    payloads[APPROVAL_EXTENDED] = ApprovalExtended(
        approval=approval,
        incident=thread,
        playbook="infectious-disease-joint-control",
        step="coordinator-approves-passes",
        by="310118",
        at="2026-07-01T00:35:00.000Z",
        tasks=[task],
    )
    for state, event_type in APPROVAL_DECIDED_TYPES.items():
        payloads[event_type] = ApprovalDecided(
            approval=approval,
            incident=thread,
            playbook="infectious-disease-joint-control",
            step="coordinator-approves-passes",
            state=state,
            by="coordinator-wang",
            reason="not needed" if state.value == "rejected" else None,
            at="2026-07-01T00:40:00.000Z",
            issued=[task.id] if state.value == "approved" else [],
        )
    assert set(payloads) == set(EVENT_TYPES)
    return [
        make_event(
            event_type,
            payload,
            id=derived_id(event_type),
            source="/liandong/hub/test",
            time="2026-07-01T00:31:00.000Z",
            jurisdiction="320509",
            correlationid=thread,
            subject=task.id,
        ).encode()
        for event_type, payload in sorted(payloads.items())
    ]


@pytest.mark.parametrize("raw", _events(), ids=lambda raw: orjson.loads(raw)["type"])
def test_events_as_the_hub_encodes_them_fit_their_schema(raw: bytes) -> None:
    event = orjson.loads(raw)
    _validator(SCHEMAS / "events" / f"{event['type']}.json").validate(event)
    other = "task.done" if event["type"] == "task.issued" else "task.issued"
    errors = list(_validator(SCHEMAS / "events" / f"{other}.json").iter_errors(event))
    assert errors, f"the schema of {other} must refuse a {event['type']} event"


def test_servers_are_the_hosts_the_deployment_runs() -> None:
    compose = YAML(typ="safe").load((REPO / "deploy/compose.yaml").read_text(encoding="utf-8"))
    hub_env = compose["services"]["hub"]["environment"]
    servers = _doc()["servers"]
    assert hub_env["LIANDONG_BUS"] == f"kafka://{servers['kafka']['host']}"
    mosquitto_port = compose["services"]["mosquitto"]["ports"][0].split(":")[-1]
    assert servers["mqtt"]["host"] == f"mosquitto:{mosquitto_port}"
