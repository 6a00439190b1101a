"""Finding adapters: every folder that holds an ``adapter.yaml``.

Adapters are found by their manifest, never imported: under ``adapters/`` of this installation,
and under each directory listed in ``LIANDONG_ADAPTER_PATH`` (separated by ``:``, like
``PATH``), so an operator can keep a city's adapter outside the repository. An adapter id must
be unique across all of them. A folder whose manifest does not load is reported with its error
(``liandong adapter list`` shows it) instead of hiding the other adapters.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters.framework.manifest import MANIFEST_FILE, Manifest, load_manifest
from hub.errors import HubError, InvalidInput, NotFound

__all__ = ["ADAPTER_PATH_ENV", "Found", "builtin_root", "discover", "find", "search_roots"]

ADAPTER_PATH_ENV = "LIANDONG_ADAPTER_PATH"
_SKIP = frozenset({"__pycache__", "fixtures", "node_modules", ".git"})


@dataclass(frozen=True)
class Found:
    """An adapter folder and its manifest (or why the manifest did not load)."""

    folder: Path
    manifest: Manifest | None
    error: str | None = None

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST_FILE


def builtin_root() -> Path:
    """``adapters/`` of this installation."""
    return Path(__file__).resolve().parent.parent


def search_roots(env: Mapping[str, str] | None = None) -> list[Path]:
    """``adapters/``, then every directory of ``LIANDONG_ADAPTER_PATH``, without repeats."""
    value = (os.environ if env is None else env).get(ADAPTER_PATH_ENV, "")
    roots = [builtin_root(), *(Path(p).expanduser() for p in value.split(os.pathsep) if p)]
    unique: list[Path] = []
    for root in roots:
        resolved = root.resolve()
        if resolved not in unique:
            unique.append(resolved)
    return unique


def _manifests(root: Path) -> Iterable[Path]:
    if not root.is_dir():
        return
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP and not d.startswith("."))
        if MANIFEST_FILE in files:
            yield Path(current) / MANIFEST_FILE
            dirs[:] = []  # an adapter folder holds no other adapter


def discover(roots: Iterable[Path] | None = None) -> list[Found]:
    """Every adapter folder under ``roots`` (default :func:`search_roots`), sorted by id (the
    folder name for one whose manifest failed). Raises ``InvalidInput`` if two folders claim
    the same id."""
    found: list[Found] = []
    for root in search_roots() if roots is None else roots:
        for path in _manifests(root):
            try:
                found.append(Found(path.parent, load_manifest(path)))
            except HubError as exc:
                found.append(Found(path.parent, None, str(exc)))
    seen: dict[str, Path] = {}
    for item in found:
        if item.manifest is None:
            continue
        other = seen.setdefault(item.manifest.id, item.folder)
        if other != item.folder:
            raise InvalidInput(
                f"adapter id '{item.manifest.id}' is used by {other} and by {item.folder}"
            )
    return sorted(found, key=lambda f: f.manifest.id if f.manifest else f.folder.name)


def find(adapter_id: str, roots: Iterable[Path] | None = None) -> Found:
    """The adapter with this id; ``NotFound`` lists the ids there are, ``InvalidInput`` if its
    manifest does not load."""
    everything = discover(roots)
    for item in everything:
        if item.manifest is not None and item.manifest.id == adapter_id:
            return item
    for item in everything:  # a broken manifest in a folder of that name: say why
        if item.manifest is None and item.folder.name == adapter_id:
            raise InvalidInput(item.error or f"{item.manifest_path}: does not load")
    known = ", ".join(f.manifest.id for f in everything if f.manifest) or "none"
    raise NotFound(f"no adapter '{adapter_id}' (found: {known}; see {ADAPTER_PATH_ENV})")
