"""Adapter manifests, their JSON Schema, discovery, and ``liandong adapter check``."""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path

import jsonschema
import orjson
import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from adapters.framework.discovery import builtin_root, discover, find, search_roots
from adapters.framework.fixtures import check_adapter, same_document
from adapters.framework.manifest import (
    SCHEMA_PATH,
    HttpTransport,
    Manifest,
    load_manifest,
    schema_text,
)
from hub.errors import InvalidInput, NotFound

SHANGHAI = builtin_root() / "cities" / "shanghai"


def test_the_shanghai_adapter_manifest_loads() -> None:
    manifest = load_manifest(SHANGHAI / "adapter.yaml")
    assert manifest.id == "shanghai" and manifest.jurisdiction == "310000"
    assert isinstance(manifest.transport, HttpTransport)
    assert manifest.transport.listen is not None and manifest.transport.deliver is not None
    assert manifest.transport.deliver.breaker.failures == 5
    assert manifest.codec.kind == "cap" and manifest.hub.token_env == "SHANGHAI_HUB_TOKEN"
    assert manifest.owners and all(o.contact for o in manifest.owners)


def test_the_committed_schema_is_current_and_accepts_the_manifest() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "manifest.schema.json is stale: liandong adapter schema > "
        "adapters/framework/manifest.schema.json"
    )
    schema = orjson.loads(SCHEMA_PATH.read_bytes())
    jsonschema.Draft202012Validator.check_schema(schema)
    document = YAML(typ="safe", pure=True).load((SHANGHAI / "adapter.yaml").read_text("utf-8"))
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    document["transport"]["kind"] = "carrier-pigeon"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = (SHANGHAI / "adapter.yaml").read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "adapter.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('jurisdiction: "310000"', "jurisdiction: 310000", r'jurisdiction: .*quoted: "310000"'),
        ("    port: 8731", "    port: 8731\n    colour: red", r"transport.listen.colour: "),
        ("  kind: cap", "  kind: cap-1.2", r"codec.kind: "),
        ("    url: https://", "    url: ftp://", r"transport.deliver.url: "),
        (
            "    breaker: {failures: 5",
            "    breaker: {failures: 0",
            r"transport.deliver.breaker.failures: ",
        ),
        ("  token_env: SHANGHAI_HUB_TOKEN", "  token_env: s3cr3t-token", r"hub.token_env: "),
        ("  kind: http", "  kind: smoke-signals", r"transport.kind: .*'http', 'kafka', 'mqtt'"),
        ("id: shanghai", "id: shanghai\nid: again", r"found duplicate key"),
    ],
)
def test_a_bad_manifest_is_refused_naming_line_and_field(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    path = _variant(tmp_path, old, new)
    wrong = new.splitlines()[-1]
    lines = path.read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.startswith(wrong))
    with pytest.raises(InvalidInput, match=f"adapter.yaml: line {line}: {expected}"):
        load_manifest(path)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ("  kind: dialect", r"line 22: codec: .*needs `mapping`"),
        ("  kind: dialect\n  mapping: ../../etc/x.yaml", r"line 24: codec.mapping: .*inside"),
    ],
)
def test_codec_rules(tmp_path: Path, new: str, expected: str) -> None:
    with pytest.raises(InvalidInput, match=expected):
        load_manifest(_variant(tmp_path, "  kind: cap", new))


def test_an_mqtt_manifest_must_carry_canonical_json() -> None:
    document = {
        "id": "mqtt-city",
        "name": "MQTT city",
        "jurisdiction": "310118",
        "transport": {"kind": "mqtt", "broker": {"host": "127.0.0.1", "client_id": "x"}},
        "codec": {"kind": "cap"},
        "hub": {"token_env": "QINGPU_HUB_TOKEN"},
        "owners": [{"name": "n", "contact": "n@x.invalid"}],
    }
    with pytest.raises(ValueError, match="canonical-json"):
        Manifest.model_validate(document)
    document["codec"] = {"kind": "canonical-json"}
    assert Manifest.model_validate(document).transport.kind == "mqtt"


def _copy(to: Path, adapter_id: str, jurisdiction: str = "310000") -> Path:
    shutil.copytree(SHANGHAI, to)
    manifest = to / "adapter.yaml"
    text = manifest.read_text(encoding="utf-8").replace("id: shanghai", f"id: {adapter_id}", 1)
    manifest.write_text(text.replace('"310000"', f'"{jurisdiction}"', 1), encoding="utf-8")
    return to


def test_discovery_finds_builtin_adapters_and_those_on_the_adapter_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = tmp_path / "ops" / "adapters"
    _copy(extra / "qingpu", "qingpu-cap", "310118")
    (tmp_path / "ops" / "adapters" / "broken").mkdir()
    (tmp_path / "ops" / "adapters" / "broken" / "adapter.yaml").write_text("id: [", "utf-8")
    monkeypatch.setenv("LIANDONG_ADAPTER_PATH", f"{extra}:{tmp_path / 'missing'}")
    assert search_roots()[0] == builtin_root() and extra.resolve() in search_roots()
    found = {f.manifest.id if f.manifest else f"!{f.folder.name}": f for f in discover()}
    assert {"shanghai", "qingpu-cap", "!broken"} <= set(found)
    assert found["qingpu-cap"].folder == (extra / "qingpu").resolve()
    assert "line 1" in (found["!broken"].error or "")
    assert find("qingpu-cap").manifest.jurisdiction == "310118"  # type: ignore[union-attr]
    with pytest.raises(NotFound, match="qingpu-cap"):
        find("atlantis")
    with pytest.raises(InvalidInput, match="line 1"):
        find("broken")


def test_two_folders_with_one_id_are_an_error(tmp_path: Path) -> None:
    _copy(tmp_path / "a", "same")
    _copy(tmp_path / "b", "same")
    with pytest.raises(InvalidInput, match=r"'same' is used by .*a and by .*b"):
        discover([tmp_path])


def test_check_passes_the_shanghai_fixtures_and_fails_a_changed_expectation(
    tmp_path: Path,
) -> None:
    checks = check_adapter(find("shanghai"), known_jurisdiction=True)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    assert sum(c.name.startswith("case ") for c in checks) == 7

    folder = _copy(tmp_path / "sh", "sh-broken")
    task_xml = folder / "fixtures" / "task-protect-intakes.xml"
    task_xml.write_text(task_xml.read_text("utf-8").replace("310000", "310118"), "utf-8")
    answer = folder / "fixtures" / "answer-decline.json"
    answer.write_text(answer.read_text("utf-8").replace("decline", "accept"), "utf-8")
    failed = {c.name: c.problem for c in check_adapter(discover([tmp_path])[0]) if not c.ok}
    assert set(failed) == {"case task-protect-intakes", "case answer-decline-with-reason"}
    problem = failed["case task-protect-intakes"] or ""
    assert "-  <addresses>310118</addresses>" in problem
    assert "+  <addresses>310000</addresses>" in problem


def test_documents_compare_as_documents_not_bytes() -> None:
    assert same_document(b'{"a": [1, 2], "b": "x"}', b'{"b":"x","a":[1,2]}') is None
    assert same_document(b"<a><b>1</b></a>", b"<a>\n  <b>1</b>\n</a>\n") is None
    assert "differs" in (same_document(b"<a><b>2</b></a>", b"<a><b>1</b></a>") or "")


def test_the_adapter_commands_reach_liandong_through_the_entry_point() -> None:
    group = importlib.metadata.entry_points(group="liandong.commands")
    assert "adapters.framework.cli:app" in {e.value for e in group if e.name == "adapter"}
    from hub.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["adapter", "list"])
    assert listed.exit_code == 0 and "shanghai\t310000\thttp\tcap" in listed.output
    checked = runner.invoke(app, ["adapter", "check", "shanghai"])
    assert checked.exit_code == 0, checked.output
    assert "ok   shanghai: case answer-decline-with-reason" in checked.output
    shown = runner.invoke(app, ["adapter", "show", "shanghai"])
    assert orjson.loads(shown.output)["manifest"]["transport"]["deliver"]["retry"]["attempts"] == 5
    missing = runner.invoke(app, ["adapter", "run", "atlantis"])
    assert missing.exit_code == 2 and "no adapter 'atlantis'" in missing.output
    no_token = runner.invoke(app, ["adapter", "run", "shanghai"], env={"SHANGHAI_HUB_TOKEN": ""})
    assert no_token.exit_code == 2 and "SHANGHAI_HUB_TOKEN is not set" in no_token.output
    env = {"SHANGHAI_HUB_TOKEN": "t", "SHANGHAI_CITY_TASKS_TOKEN": ""}
    no_city_token = runner.invoke(app, ["adapter", "run", "shanghai"], env=env)
    assert no_city_token.exit_code == 2
    assert "SHANGHAI_CITY_TASKS_TOKEN is not set" in no_city_token.output
