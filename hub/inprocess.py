"""City adapters inside the embedded hub's own process (``liandong run --adapters ID,ID`` or
``LIANDONG_ADAPTERS=ID,ID``).

The hub never imports ``adapters``: the adapter framework registers a factory under the entry
point group ``liandong.inprocess`` (name ``adapters``, ``pyproject.toml``), which this module
loads by name, as ``hub.cli`` loads the ``liandong.commands`` group. The factory is called as
``factory(adapter_ids, hub_url)``; it checks everything it can before the hub serves (an
unknown adapter id, a manifest that does not load, a missing token: a :class:`HubError`
naming it, and ``liandong run`` stops with that message) and returns an object whose
``async run()`` runs the adapters until cancelled, restarting any that crashes.

:class:`HubServer` is uvicorn's server with the adapters attached: they start once the hub
listens and its lifespan has started (so their first request finds it ready), and they stop
before the hub stops serving (so none of them talks to a hub that is going away). uvicorn
re-raises SIGTERM once it has shut down, which ends the process there and then: stopping the
adapters inside ``shutdown`` is what makes sure they are closed by then.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import Protocol

import uvicorn

from hub.errors import HubError, InvalidInput

log = logging.getLogger(__name__)

__all__ = [
    "ADAPTERS_ENV",
    "ENTRY_POINT_GROUP",
    "HubServer",
    "InProcessAdapters",
    "adapter_ids",
    "load_adapters",
    "loopback_url",
]

ADAPTERS_ENV = "LIANDONG_ADAPTERS"
ENTRY_POINT_GROUP = "liandong.inprocess"
ENTRY_POINT_NAME = "adapters"
STOP_TIMEOUT_S = 10.0
_ID = re.compile(r"[a-z0-9][a-z0-9-]*")


class InProcessAdapters(Protocol):
    """What the ``liandong.inprocess`` factory returns."""

    @property
    def ids(self) -> Sequence[str]: ...

    async def run(self) -> None: ...


def adapter_ids(option: str | None, env: Mapping[str, str] | None = None) -> list[str]:
    """The adapter ids to run in the hub: ``--adapters``, else ``LIANDONG_ADAPTERS``; a comma-
    separated list (spaces allowed), repeats dropped. ``InvalidInput`` names a malformed id."""
    env = os.environ if env is None else env
    value = option if option is not None else env.get(ADAPTERS_ENV, "")
    where = "--adapters" if option is not None else ADAPTERS_ENV
    ids: list[str] = []
    for part in value.split(","):
        item = part.strip()
        if not item:
            continue
        if not _ID.fullmatch(item):
            raise InvalidInput(
                f"{where}: '{item}' is not an adapter id (lower-case letters, digits and "
                "'-'; `liandong adapter list` shows them)"
            )
        if item not in ids:
            ids.append(item)
    return ids


def loopback_url(host: str, port: int) -> str:
    """The hub's own URL as seen from inside its process: a wildcard listen address is
    reached on the loopback interface."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def load_adapters(ids: Sequence[str], hub_url: str) -> InProcessAdapters | None:
    """The adapters to run in this process, checked and ready to start (None for none)."""
    if not ids:
        return None
    found = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == ENTRY_POINT_NAME]
    if not found:
        raise HubError(
            f"in-process adapters asked for ({', '.join(ids)}), but no '{ENTRY_POINT_NAME}' "
            f"entry point is registered in the group '{ENTRY_POINT_GROUP}': install the "
            "project with its adapters (pip install -e .) or run them as their own processes "
            "(liandong adapter run ID)"
        )
    try:
        factory = found[0].load()
    except Exception as exc:
        raise HubError(f"in-process adapters could not be loaded: {exc}") from exc
    adapters: InProcessAdapters = factory(list(ids), hub_url)
    return adapters


class HubServer(uvicorn.Server):
    """uvicorn's server, running in-process adapters beside the hub while it serves."""

    def __init__(self, config: uvicorn.Config, adapters: InProcessAdapters | None) -> None:
        super().__init__(config)
        self.adapters = adapters
        self._running: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.adapters is not None and self.started and not self.should_exit:
            log.info("starting in-process adapters: %s", ", ".join(self.adapters.ids))
            self._running = asyncio.create_task(self._run(self.adapters), name="adapters")

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.stop_adapters()
        await super().shutdown(sockets)

    async def stop_adapters(self) -> None:
        """Cancel the adapters and wait (at most ``STOP_TIMEOUT_S``) until they have closed."""
        running, self._running = self._running, None
        if running is None:
            return
        running.cancel()
        done, _ = await asyncio.wait({running}, timeout=STOP_TIMEOUT_S)
        if not done:
            log.warning("in-process adapters did not stop within %.0f s", STOP_TIMEOUT_S)
        else:
            log.info("in-process adapters stopped")

    @staticmethod
    async def _run(adapters: InProcessAdapters) -> None:
        # The adapters restart themselves after a crash; should their supervisor itself fail,
        # the hub keeps serving and says so.
        try:
            await adapters.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("in-process adapters failed; the hub keeps running without them")
