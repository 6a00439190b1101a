"""Loading the agreements file (``data/agreements.yaml``) into validated models.

The file is parsed by ruamel.yaml's safe, pure-Python loader: it builds only plain data (no
arbitrary objects) and refuses duplicate mapping keys, so a clause pasted twice is an error with
a line number rather than a silent override of the first copy.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from hub.model.region import Agreement

__all__ = ["AgreementFileError", "default_agreements_path", "load_agreements"]


class AgreementFileError(ValueError):
    """The agreements file is malformed: bad YAML, a duplicate key, or an invalid agreement."""


class _AgreementsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    agreements: tuple[Agreement, ...]


def default_agreements_path() -> Path:
    """The agreements file shipped with the hub."""
    return Path(str(resources.files("hub.region") / "data" / "agreements.yaml"))


def load_agreements(path: Path | None = None) -> list[Agreement]:
    """Read and validate an agreements file; agreements are returned sorted by id.

    Raises AgreementFileError naming the file (and the line, for YAML errors such as a
    duplicate key) when the file cannot be trusted.
    """
    source = path if path is not None else default_agreements_path()
    raw = _read_yaml(source)
    if isinstance(raw, dict):
        # Top-level "x-" keys only hold YAML anchors shared by the agreements (as in Compose).
        raw = {k: v for k, v in raw.items() if not str(k).startswith("x-")}
    try:
        parsed = _AgreementsFile.model_validate(raw)
    except ValidationError as exc:
        raise AgreementFileError(f"{source}: invalid agreements:\n{exc}") from exc
    ids = [a.id for a in parsed.agreements]
    if dupes := sorted({i for i in ids if ids.count(i) > 1}):
        raise AgreementFileError(f"{source}: duplicate agreement ids {dupes}")
    return sorted(parsed.agreements, key=lambda a: a.id)


def _read_yaml(source: Path) -> Any:
    yaml = YAML(typ="safe", pure=True)
    try:
        with source.open(encoding="utf-8") as stream:
            return yaml.load(stream)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
        raise AgreementFileError(f"{source}: {where}: {exc.problem or exc}") from exc
    except YAMLError as exc:
        raise AgreementFileError(f"{source}: {exc}") from exc
