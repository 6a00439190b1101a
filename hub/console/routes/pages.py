"""The duty officers' console: one page at ``/`` and its assets under ``/console/``.

Everything the browser needs is served from ``hub/console/web`` (the map is plain SVG drawn
from ``/api/v1/region/map``, so nothing is vendored): no CDN, web font or tile server, so the
console works on a machine without Internet access. The page signs in itself
(``/api/v1/session``); until then it shows only its sign-in form, and every data route answers
401.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from hub.errors import NotFound

router = APIRouter(tags=["console"])

_WEB = files("hub.console").joinpath("web")
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
}
# Scripts, styles and data come only from the hub itself; nothing inline runs.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _assets(root: Traversable, prefix: str = "") -> dict[str, tuple[bytes, str]]:
    found: dict[str, tuple[bytes, str]] = {}
    for entry in root.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            found.update(_assets(entry, name + "/"))
            continue
        suffix = "." + entry.name.rpartition(".")[2]
        if suffix in _TYPES:
            found[name] = (entry.read_bytes(), _TYPES[suffix])
    return found


ASSETS = _assets(_WEB)
_PAGE = _WEB.joinpath("index.html").read_text(encoding="utf-8")


@router.get("/", response_class=HTMLResponse)
async def console_page() -> HTMLResponse:
    return HTMLResponse(_PAGE, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})


@router.get("/console/{name:path}")
async def console_asset(name: str) -> Response:
    """A file of the console (scripts, styles, the language catalogues)."""
    found = ASSETS.get(name)
    if found is None:
        raise NotFound(f"no console file '{name}'")
    body, media_type = found
    return Response(body, media_type=media_type, headers={"Cache-Control": "no-cache"})
