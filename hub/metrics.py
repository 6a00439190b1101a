"""Prometheus metrics of one hub (a registry per hub, so several can live in one process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _LagCollector(Collector):
    def __init__(self, read_lag: Callable[[], dict[tuple[str, str], int]]) -> None:
        self._read_lag = read_lag

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "liandong_bus_lag",
            "Records on a topic not yet committed by a consumer group",
            labels=["group", "topic"],
        )
        for (group, topic), lag in sorted(self._read_lag().items()):
            family.add_metric([group, topic], lag)
        yield family


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.incidents_accepted = Counter(
            "liandong_incidents_accepted",
            "Incidents accepted by the intake",
            ["lane"],
            registry=self.registry,
        )
        self.incidents_refused = Counter(
            "liandong_incidents_refused",
            "Incidents refused by the intake",
            ["reason"],
            registry=self.registry,
        )
        self.tasks_issued = Counter(
            "liandong_tasks_issued", "Tasks issued by the engine", ["lane"], registry=self.registry
        )
        self.deadlettered = Counter(
            "liandong_deadlettered",
            "Messages sent to the dead-letter topic",
            ["group"],
            registry=self.registry,
        )

    def watch_lag(self, read_lag: Callable[[], dict[tuple[str, str], int]]) -> None:
        self.registry.register(_LagCollector(read_lag))
