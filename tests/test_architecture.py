"""Dependency rules that keep the parts apart, checked on the source (imports, by AST)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IO_MODULES = {
    "sqlite3",
    "socket",
    "asyncio",
    "aiokafka",
    "aiomqtt",
    "httpx",
    "fastapi",
    "subprocess",
    "os",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _py(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def _top(name: str) -> str:
    return name.split(".")[0]


def test_model_does_no_io() -> None:
    for path in _py("hub/model"):
        bad = {
            m
            for m in _imports(path)
            if _top(m) in IO_MODULES
            or (m.startswith("hub.") and not m.startswith(("hub.model", "hub.errors")))
        }
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}: hub.model is pure data"


def test_hub_never_imports_adapters() -> None:
    for path in _py("hub"):
        bad = {m for m in _imports(path) if _top(m) == "adapters"}
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_nothing_imports_the_console() -> None:
    for folder in ("hub", "adapters"):
        for path in _py(folder):
            if "console" in path.relative_to(REPO).parts:
                continue
            bad = {m for m in _imports(path) if m.startswith("hub.console")}
            assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_only_the_kafka_backend_imports_aiokafka_and_only_the_mqtt_transport_aiomqtt() -> None:
    for folder in ("hub", "adapters"):
        for path in _py(folder):
            rel = path.relative_to(REPO).as_posix()
            imports = {_top(m) for m in _imports(path)}
            if "aiokafka" in imports:
                assert rel.startswith(("hub/bus/kafka", "adapters/transports/kafka")), rel
            if "aiomqtt" in imports:
                assert rel.startswith("adapters/transports/mqtt"), rel


def test_every_setting_read_by_the_code_is_documented() -> None:
    used: set[str] = set()
    for folder in ("hub", "adapters"):
        for path in _py(folder):
            used.update(re.findall(r"LIANDONG_[A-Z_]+", path.read_text(encoding="utf-8")))
    example = (REPO / "deploy/env/liandong.env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"LIANDONG_[A-Z_]+", example))
    assert used, "the settings module reads LIANDONG_* variables"
    assert used <= documented, f"undocumented settings: {sorted(used - documented)}"


def test_source_files_stay_readable() -> None:
    for folder in ("hub", "adapters"):
        for path in _py(folder):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            assert lines <= 500, (
                f"{path.relative_to(REPO)} has {lines} lines: split it by responsibility"
            )
