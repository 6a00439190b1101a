"""Playing a scenario: the cities' adapters, the simulated city systems, and the clock.

:class:`Simulation` finds the adapter of every city of the scenario, runs it (an
:class:`~adapters.framework.runner.AdapterRunner` in this process, pointed at its simulated
city by :mod:`adapters.simulator.wiring`), connects the simulated city over the same transport
and format, then sends each incident at its offset (divided by ``speed``) and lets the cities
answer their tasks until the scenario's ``run_for`` has passed::

    async with Simulation(scenario, Setup(hub_url=..., tokens=...)) as sim:
        await sim.wait()
    print(sim.report())

Incident identifiers are ``{name}-{run_id}``, so a scenario can be played again against the
same hub with another run id; the same run id against a fresh hub gives the same identifiers,
task ids and (with the same seed) the same answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adapters.framework.discovery import Found, find
from adapters.framework.http_out import Breakers
from adapters.framework.runner import AdapterRunner, HubAccess
from adapters.simulator.cities import CST, SimulatedCity, now_cst
from adapters.simulator.city_http import HttpCity
from adapters.simulator.city_kafka import KafkaCity
from adapters.simulator.city_mqtt import MqttCity
from adapters.simulator.region_scenario import IncidentPlan, RegionScenario
from adapters.simulator.speech import speech_for
from adapters.simulator.wiring import KafkaPlace, MqttPlace, wire
from hub.bus.kafka_setup import ensure_topics
from hub.errors import HubError, InvalidInput
from hub.model.incident import Incident
from hub.model.region import speaks_for

log = logging.getLogger("adapters.simulator")

__all__ = ["Setup", "Simulation", "check_scenario", "incident_of"]

READY_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Setup:
    """Where the simulation runs: the hub, the adapters' tokens, the brokers, the dials."""

    hub_url: str
    tokens: Mapping[str, str]  # adapter id -> its hub token (`liandong adapters add`)
    mqtt: MqttPlace | None = None
    kafka: KafkaPlace | None = None
    seed: int | None = None  # None: the scenario's
    speed: float = 1.0  # scenario seconds per real second
    run_id: str = ""  # "": now, as YYYYmmddHHMMSS
    poll_interval_s: float | None = None  # None: each manifest's
    only: frozenset[str] | None = None  # adapter ids to play (None: every city)
    roots: Sequence[Path] | None = None  # where adapters are found (None: discovery)


def incident_of(
    plan: IncidentPlan, *, sender: str, run_id: str, sent: str, earlier: Mapping[str, Incident]
) -> Incident:
    """The canonical incident a plan stands for (``InvalidInput`` if it is not valid CAP)."""
    message = dict(plan.message)
    message.update(identifier=f"{plan.name}-{run_id}", sender=sender, sent=sent)
    if plan.references:
        message["references"] = " ".join(
            f"{earlier[r].sender},{earlier[r].identifier},{earlier[r].sent}"
            for r in plan.references
        )
    try:
        return Incident.model_validate(message)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(f"incident '{plan.name}': {where}: {err['msg']}") from None


def check_scenario(scenario: RegionScenario, roots: Sequence[Path] | None = None) -> list[str]:
    """What in a scenario cannot be played: an unknown adapter, a sender the city does not
    speak for, an incident that is not valid CAP or that the city's format cannot carry."""
    problems: list[str] = []
    adapters: dict[str, Found] = {}
    for city in scenario.cities:
        try:
            adapters[city] = find(city, roots)
        except HubError as exc:
            problems.append(f"{city}: {exc}")
    earlier: dict[str, Incident] = {}
    for city, plan in scenario.incidents():
        found = adapters.get(city)
        if found is None or found.manifest is None:
            continue
        sender = plan.sender or found.manifest.jurisdiction
        if not speaks_for(found.manifest.jurisdiction, sender):
            problems.append(f"{city} ({found.manifest.jurisdiction}) cannot report for {sender}")
        try:
            play = scenario.cities[city]
            speech = speech_for(found.manifest.codec, found.folder, play.cap_version)
            incident = incident_of(
                plan, sender=sender, run_id="check", sent=now_cst(), earlier=earlier
            )
            earlier[plan.name] = incident
            speech.incident(incident)
        except HubError as exc:
            problems.append(f"{city}, incident '{plan.name}': {exc}")
    return problems


class Simulation:
    """One play of a scenario."""

    def __init__(self, scenario: RegionScenario, setup: Setup) -> None:
        self.scenario = scenario
        self.setup = setup
        self.seed = scenario.seed if setup.seed is None else setup.seed
        self.run_id = setup.run_id or datetime.now(CST).strftime("%Y%m%d%H%M%S")
        self.cities: dict[str, SimulatedCity] = {}
        self.runners: dict[str, AdapterRunner] = {}
        self.skipped: dict[str, str] = {}
        self.sent: dict[str, Incident] = {}  # incident name -> as sent
        self._names = {f"{plan.name}-{self.run_id}": plan.name for _, plan in scenario.incidents()}
        self._tasks: list[asyncio.Task[None]] = []
        self._started_at = 0.0

    async def __aenter__(self) -> Simulation:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- start -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start every adapter and city system, then the clock of the incidents."""
        breakers = Breakers()
        connecting: list[tuple[SimulatedCity, MqttCity | KafkaCity]] = []
        for adapter_id, play in self.scenario.cities.items():
            if self.setup.only is not None and adapter_id not in self.setup.only:
                continue
            found = find(adapter_id, self.setup.roots)
            assert found.manifest is not None
            token = self.setup.tokens.get(adapter_id)
            if token is None:
                self._skip(adapter_id, "no hub token for it")
                continue
            speech = speech_for(found.manifest.codec, found.folder, play.cap_version)
            city = SimulatedCity(
                adapter_id,
                found.manifest.jurisdiction,
                speech,
                play,
                seed=self.seed,
                speed=self.setup.speed,
                names=self._names,
            )
            try:
                wired = await wire(
                    found.manifest,
                    hub_token=token,
                    content_type=speech.content_type,
                    receive=city.receive,
                    mqtt=self.setup.mqtt,
                    kafka=self.setup.kafka,
                    poll_interval_s=self.setup.poll_interval_s,
                )
            except ValueError as exc:
                self._skip(adapter_id, str(exc))
                continue
            city.transport = wired.city
            self.cities[adapter_id] = city
            if isinstance(wired.city, KafkaCity):
                topics = wired.city.topics
                names = [t for t in (topics.incidents, topics.answers, topics.tasks) if t]
                assert self.setup.kafka is not None
                await ensure_topics(self.setup.kafka.bootstrap, names)
            runner = AdapterRunner(
                Found(found.folder, wired.manifest),
                HubAccess(self.setup.hub_url, token),
                env={**os.environ, **wired.env},
                breakers=breakers,
            )
            self.runners[adapter_id] = runner
            self._tasks.append(asyncio.create_task(runner.run(), name=f"adapter {adapter_id}"))
            if not isinstance(wired.city, HttpCity):
                connecting.append((city, wired.city))
        await self._ready()
        await asyncio.gather(*(transport.start(city.receive) for city, transport in connecting))
        self._started_at = time.monotonic()
        self._tasks.append(asyncio.create_task(self._play(), name="incidents"))

    def _skip(self, adapter_id: str, why: str) -> None:
        self.skipped[adapter_id] = why
        log.warning("%s is not played: %s", adapter_id, why)

    async def _ready(self) -> None:
        async with asyncio.timeout(READY_TIMEOUT_S):
            for adapter_id, runner in self.runners.items():
                while not runner.ready.is_set():
                    self.check()
                    await asyncio.sleep(0.05)
                log.info("adapter %s is running", adapter_id)

    def check(self) -> None:
        """Raise what stopped an adapter or the clock, if anything did."""
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"{task.get_name()} stopped") from task.exception()

    # -- the clock ---------------------------------------------------------------------------
    async def _play(self) -> None:
        for adapter_id, plan in self.scenario.incidents():
            city = self.cities.get(adapter_id)
            await asyncio.sleep(max(0.0, self._due(plan.at) - time.monotonic()))
            if city is None:
                continue
            try:
                incident = incident_of(
                    plan,
                    sender=plan.sender or city.jurisdiction,
                    run_id=self.run_id,
                    sent=now_cst(),
                    earlier=self.sent,
                )
            except (InvalidInput, KeyError) as exc:
                log.error("%s: incident '%s' not sent: %s", adapter_id, plan.name, exc)
                continue
            self.sent[plan.name] = incident
            await city.report(plan.name, incident)

    def _due(self, at_s: float) -> float:
        return self._started_at + at_s / self.setup.speed

    async def wait(self, run_for_s: float | None = None) -> None:
        """Until ``run_for_s`` scenario seconds (default: the scenario's) have passed since the
        start; raises if an adapter stopped."""
        end = self._due(self.scenario.run_for if run_for_s is None else run_for_s)
        while time.monotonic() < end:
            self.check()
            await asyncio.sleep(min(0.5, max(0.0, end - time.monotonic())))

    # -- stop --------------------------------------------------------------------------------
    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(city.close() for city in self.cities.values()))

    def report(self) -> dict[str, Any]:
        """What happened, as JSON-ready data."""
        return {
            "scenario": self.scenario.title,
            "seed": self.seed,
            "run_id": self.run_id,
            "speed": self.setup.speed,
            "skipped": self.skipped,
            "cities": {name: city.summary() for name, city in self.cities.items()},
            "adapters": {name: dict(runner.stats) for name, runner in self.runners.items()},
        }
