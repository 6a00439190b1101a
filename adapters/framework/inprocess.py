"""Adapters running inside the embedded hub's process (``liandong run --adapters ID,ID``).

The hub reaches this module through the entry point group ``liandong.inprocess``
(``hub/inprocess.py`` loads it by name; the hub never imports ``adapters``) and calls
:func:`in_process` with the adapter ids and its own loopback URL.

Each adapter talks to the hub over **loopback HTTP**, exactly as from its own process: the same
:class:`~adapters.framework.runner.AdapterRunner`, the same bearer token (the manifest's
``hub.token_env``), the same front door (``intake_http``: authentication, body limits,
dead-lettering, problem+json). An in-process transport such as ``httpx.ASGITransport`` would
save the TCP round trip on 127.0.0.1, but it runs the hub's ASGI app inside the adapter's own
task (a slow intake then stalls the adapter's poll loop, and a crash in one surfaces in the
other), buffers whole responses, and would be a second code path for the API contract that
only in-process adapters exercise. Loopback keeps one contract, and moving an adapter out of
the hub's process is a change of command line, nothing else.

Each adapter runs under a supervisor: when it fails (a city endpoint's port taken, a bug, its
broker refusing it...), the error is logged and the adapter is built again and restarted after
a backoff that doubles from ``initial_s`` up to ``max_s`` and starts over once an adapter has
run for ``healthy_s``. A failing adapter never stops the others or the hub. Cancelling
:meth:`Supervisor.run` stops every adapter; each closes what it opened.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from adapters.framework.discovery import Found, find
from adapters.framework.http_out import Breakers
from adapters.framework.runner import AdapterRunner, hub_access
from hub.errors import HubError, InvalidInput

log = logging.getLogger("adapters.inprocess")

__all__ = ["Backoff", "Supervisor", "in_process"]

READY_LOG = "in-process adapter %s ready (%s, %s) for %s"


@dataclass(frozen=True)
class Backoff:
    """How long a crashed adapter waits before its restart."""

    initial_s: float = 0.5
    max_s: float = 30.0
    healthy_s: float = 60.0  # ran this long: the next crash waits initial_s again

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise InvalidInput(f"backoff: need 0 < initial_s <= max_s, got {self}")


RunnerFactory = Callable[[], AdapterRunner]


class Supervisor:
    """Runs adapters side by side, each restarted after a crash."""

    def __init__(
        self, factories: Mapping[str, RunnerFactory], backoff: Backoff | None = None
    ) -> None:
        self.factories = dict(factories)
        self.backoff = backoff or Backoff()
        self.runners: dict[str, AdapterRunner] = {}  # the current runner of each adapter
        self.restarts: dict[str, int] = dict.fromkeys(self.factories, 0)
        self.last_error: dict[str, str] = {}

    @property
    def ids(self) -> Sequence[str]:
        return list(self.factories)

    async def run(self) -> None:
        """Until cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                for adapter_id, factory in self.factories.items():
                    group.create_task(self._supervise(adapter_id, factory), name=adapter_id)
        finally:
            for adapter_id, runner in self.runners.items():
                log.info("in-process adapter %s stopped: %s", adapter_id, dict(runner.stats))

    async def _supervise(self, adapter_id: str, factory: RunnerFactory) -> None:
        loop = asyncio.get_running_loop()
        delay = self.backoff.initial_s
        while True:
            started = loop.time()
            try:
                runner = factory()
                self.runners[adapter_id] = runner
                await _run_announced(adapter_id, runner)
                problem = "it stopped by itself"
            except asyncio.CancelledError:
                raise
            except (Exception, SystemExit) as exc:  # uvicorn exits when it cannot bind
                problem = _describe(exc)
                log.debug("in-process adapter %s failed", adapter_id, exc_info=True)
            if loop.time() - started >= self.backoff.healthy_s:
                delay = self.backoff.initial_s
            self.restarts[adapter_id] += 1
            self.last_error[adapter_id] = problem
            log.error(
                "in-process adapter %s crashed: %s; restart %d in %.3g s",
                adapter_id,
                problem,
                self.restarts[adapter_id],
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff.max_s)


async def _run_announced(adapter_id: str, runner: AdapterRunner) -> None:
    async def announce() -> None:
        await runner.ready.wait()
        m = runner.manifest
        log.info(READY_LOG, adapter_id, m.transport.kind, runner.codec.kind, m.jurisdiction)

    announcing = asyncio.create_task(announce())
    try:
        await runner.run()
    finally:
        announcing.cancel()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"its server exited ({exc.code}): see the error logged above"
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def _factory(
    found: Found, hub_url: str, env: Mapping[str, str], breakers: Breakers
) -> RunnerFactory:
    assert found.manifest is not None
    access = hub_access(found.manifest, url=hub_url, env=env)

    def make() -> AdapterRunner:
        return AdapterRunner(found, access, env=env, breakers=breakers)

    return make


def in_process(
    adapter_ids: Sequence[str],
    hub_url: str,
    *,
    env: Mapping[str, str] | None = None,
    backoff: Backoff | None = None,
) -> Supervisor:
    """The ``liandong.inprocess`` entry point: the adapters, checked now (each found, its
    manifest and codec loaded, its hub token and city secrets in the environment), so that
    ``liandong run`` refuses to start with a message naming what is wrong."""
    env = dict(os.environ if env is None else env)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    if not adapter_ids:
        raise InvalidInput("no adapter ids given")
    breakers = Breakers()  # one circuit per destination, whichever adapters share it
    factories: dict[str, RunnerFactory] = {}
    problems: list[str] = []
    for adapter_id in adapter_ids:
        try:
            found = find(adapter_id)
            factory = _factory(found, hub_url, env, breakers)
            factory()  # builds the codec and reads the secrets: a problem shows now
        except HubError as exc:
            problems.append(f"adapter '{adapter_id}': {exc}")
            continue
        factories[adapter_id] = factory
    if problems:
        raise InvalidInput("in-process adapters: " + "; ".join(problems))
    return Supervisor(factories, backoff)
