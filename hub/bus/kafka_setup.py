"""Kafka client settings and topic creation (the hub calls ``ensure_topics`` when it starts)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from hub.bus.kafka_security import ClientSecurity, client_kwargs
from hub.errors import Unavailable

_TOPIC_EXISTS = 36  # Kafka error code TOPIC_ALREADY_EXISTS
DEFAULT_PARTITIONS = 4  # per topic: room for 4 instances sharing a group, keys spread over them


@dataclass(frozen=True)
class KafkaOptions:
    """Client settings, named as aiokafka names them (so a broker fixture can hand them over).

    The defaults suit a real Kafka cluster. Against Tansu use a few ms of ``fetch_max_wait_ms``
    (it sleeps that long on every fetch) and a short session (a group join takes half of it).
    TLS and SASL are not options but a ``ClientSecurity`` (``hub.bus.kafka_security``) given
    beside them; none is plaintext.
    """

    fetch_max_wait_ms: int = 100
    linger_ms: int = 2
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000
    request_timeout_ms: int = 30_000


async def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = DEFAULT_PARTITIONS,
    *,
    replication_factor: int = 1,
    client_id: str = "liandong-admin",
    timeout_s: float = 30.0,
    security: ClientSecurity | None = None,
) -> dict[str, int]:
    """Create the topics that do not exist yet; return every topic's partition count.

    An existing topic is left as it is (its partition count is reported, not changed). Waits
    until the broker's metadata shows every topic, since creation is asynchronous on a cluster.
    """
    wanted = list(dict.fromkeys(names))
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id=client_id, **client_kwargs(security)
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [n for n in wanted if n not in existing]
            if missing:
                response = await admin.create_topics(
                    [NewTopic(n, partitions, replication_factor) for n in missing]
                )
                for topic, code, *message in response.topic_errors:
                    if code not in (0, _TOPIC_EXISTS):
                        raise Unavailable(f"cannot create topic '{topic}': {code} {message}")
            while True:
                counts = _partition_counts(await admin.describe_topics(wanted))
                if all(counts.get(n, 0) > 0 for n in wanted):
                    return {n: counts[n] for n in wanted}
                await asyncio.sleep(0.1)
    except TimeoutError as exc:
        raise Unavailable(f"topics not ready after {timeout_s} s at {bootstrap}") from exc
    except KafkaError as exc:
        raise Unavailable(f"Kafka at {bootstrap}: {exc}") from exc
    finally:
        await admin.close()


def _partition_counts(described: list[Any]) -> dict[str, int]:
    return {
        t["topic"]: len(t["partitions"])
        for t in described
        if t["error_code"] == 0 and not t.get("is_internal")
    }
