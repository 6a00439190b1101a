"""Which database and which bus a hub runs on, chosen by its settings.

- embedded (default): SQLite + the log in the same file; one process per data directory.
- production: PostgreSQL + Kafka; state changes write their events to the outbox and one
  relay among the instances publishes them; instances share the consumer groups.
- Kafka with SQLite is allowed for a single instance (the outbox lives in the SQLite file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.bus.embedded import EmbeddedBus
from hub.bus.port import Bus
from hub.bus.relay import Leadership, OutboxRelay, SoleLeader
from hub.clock import Clock
from hub.settings import Settings
from hub.store.db import Database
from hub.store.outbox import Emitter, Outbox

RELAY_LOCK_KEY = 0x4C44_5259  # "LDRY": the advisory lock of the outbox relay leader


@dataclass
class Backends:
    db: Any  # Database (SQLite) or PostgresDatabase: both have start/stop/run
    bus: Bus
    emitter: Emitter
    relay: OutboxRelay | None
    embedded: bool
    bootstrap: str | None = None


def build(settings: Settings, clock: Clock, instance: str) -> Backends:
    if settings.database.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        from hub.store.postgres import PostgresDatabase

        db: Any = PostgresDatabase(settings.database, writers=settings.pg_writers)
    else:
        db = Database(settings.database_path, settings.sqlite_synchronous)
    if settings.bus == "embedded":
        bus = EmbeddedBus(db, clock)
        return Backends(db, bus, bus, None, embedded=True)

    from hub.bus.kafka import KafkaBus, KafkaOptions  # imported only when Kafka is configured

    bootstrap = settings.bus.removeprefix("kafka://")
    options = KafkaOptions(
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        linger_ms=settings.kafka_linger_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(100, settings.kafka_session_timeout_ms // 3),
    )
    kafka = KafkaBus(bootstrap, client_id=f"liandong-{instance}", options=options)
    leadership: Leadership = SoleLeader()
    if not isinstance(db, Database):
        from hub.store.postgres import AdvisoryLeadership

        leadership = AdvisoryLeadership(db, RELAY_LOCK_KEY)
    relay = OutboxRelay(db, kafka, clock, leadership)
    return Backends(db, kafka, Outbox(clock, on_append=relay.wake), relay, False, bootstrap)
