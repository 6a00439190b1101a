"""Publishes the broker refused, from mosquitto's log to the hub's audit log.

When the ACL denies a publish, nothing reaches the link: the broker answers the client (PUBACK
reason code 135) and writes ``Denied PUBLISH from CLIENT (..., 'TOPIC', ...)`` to its log, at
debug level (``deploy/mosquitto/mosquitto.conf`` turns it on). :class:`BrokerLogWatcher` follows
that file like ``tail -F`` (it survives rotation by rename or by truncation), learns which user
each client id connected as from ``New client connected ... as CLIENT (..., u'USER')`` lines,
and hands each denial to the link as a :class:`Refusal`.

The link reports a refusal to the hub with ``POST /api/v1/audit/refusals`` and the hub token of
the refused credential's jurisdiction (city usernames are their GB/T 2260 codes), so a city can
only ever be reported by a credential of its own. The hub route is requested, not built yet;
until it exists the hub answers 404, and the refusal stays in the link's log and
:attr:`MqttLink.refusals`. Each refusal has a stable id (the log file's inode, the line's
offset, the line), so reading the log again after a restart reports nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from adapters.links.mqtt_protocol import parse_topic

log = logging.getLogger(__name__)

_CONNECTED = re.compile(
    r"New client connected from \S+ as (?P<client>.+?) "
    r"\(p\d+, c\d+, k\d+(?:, u'(?P<user>.*)')?\)\.$"
)
_DENIED = re.compile(
    r"Denied PUBLISH from (?P<client>.+?) "
    r"\(d\d, q(?P<qos>\d), r\d, m\d+, '(?P<topic>.*)', \.\.\. \(\d+ bytes\)\)$"
)
_MARKERS = (b"New client connected", b"Denied PUBLISH")
_NAMESPACE = uuid.UUID("0b0cbf34-54a4-5b2c-9a4e-6d6f73717569")
_CHUNK = 1 << 20


@dataclass
class Refusal:
    """One publish the broker's ACL refused."""

    id: str
    observed: str  # the broker log's timestamp
    client_id: str
    credential: str | None  # the MQTT username (a city's is its jurisdiction code)
    topic: str
    jurisdiction_claimed: str | None  # the jurisdiction of the topic it tried
    qos: int
    reported: bool = False
    hub_status: int | None = field(default=None)

    @property
    def reason(self) -> str:
        told = "MQTT 5 reason code 135 Not authorized" if self.qos > 0 else "QoS 0: not told"
        return f"broker ACL denied PUBLISH to '{self.topic}' ({told})"

    def report(self) -> dict[str, Any]:
        """The body of ``POST /api/v1/audit/refusals``."""
        return {
            "id": self.id,
            "transport": "mqtt",
            "credential": self.credential,
            "client_id": self.client_id,
            "topic": self.topic,
            "jurisdiction_claimed": self.jurisdiction_claimed,
            "reason": self.reason,
            "observed": self.observed,
        }


def _read_interesting(handle: IO[bytes], offset: int) -> tuple[int, bool, list[tuple[int, bytes]]]:
    """Complete lines from ``offset`` that may matter, with their offsets; the new offset, and
    whether there may be more to read now."""
    handle.seek(offset)
    data = handle.read(_CHUNK)
    more = len(data) == _CHUNK
    end = data.rfind(b"\n") + 1
    if end == 0 and more:
        return offset + len(data), more, []  # a line longer than a chunk: not mosquitto's
    found = []
    start = 0
    while start < end:
        stop = data.index(b"\n", start)
        line = data[start:stop]
        if any(marker in line for marker in _MARKERS):
            found.append((offset + start, line))
        start = stop + 1
    return offset + end, more, found


class BrokerLogWatcher:
    """Follows mosquitto's log file and calls ``on_refusal`` for every denied publish."""

    def __init__(
        self,
        path: Path,
        on_refusal: Callable[[Refusal], Awaitable[None]],
        *,
        poll_s: float = 0.2,
        from_start: bool = True,
    ) -> None:
        self.path = Path(path)
        self._on_refusal = on_refusal
        self._poll_s = poll_s
        self._from_start = from_start
        self.users: dict[str, str | None] = {}  # client id -> username

    def parse(self, inode: int, offset: int, raw: bytes) -> Refusal | None:
        line = raw.decode(errors="replace").rstrip("\r")
        stamp, _, text = line.partition(": ")
        connected = _CONNECTED.search(text)
        if connected:
            self.users[connected["client"]] = connected["user"]
            return None
        denied = _DENIED.search(text)
        if not denied:
            return None
        address = parse_topic(denied["topic"])
        return Refusal(
            id=str(uuid.uuid5(_NAMESPACE, f"{inode}:{offset}:{line}")),
            observed=stamp,
            client_id=denied["client"],
            credential=self.users.get(denied["client"]),
            topic=denied["topic"],
            jurisdiction_claimed=address.jurisdiction if address else None,
            qos=int(denied["qos"]),
        )

    async def run(self) -> None:
        """Until cancelled. A missing file is waited for; a rotated one is finished, then the
        new one is read from its start; a truncated one is read again from its start."""
        handle: IO[bytes] | None = None
        offset = 0
        inode = -1
        first = True
        try:
            while True:
                if handle is None:
                    try:
                        handle = self.path.open("rb")
                    except FileNotFoundError:
                        await asyncio.sleep(self._poll_s)
                        continue
                    inode = os.fstat(handle.fileno()).st_ino
                    offset = 0
                    if first and not self._from_start:
                        offset = os.fstat(handle.fileno()).st_size
                    first = False
                if os.fstat(handle.fileno()).st_size < offset:
                    offset = 0  # truncated (copytruncate)
                offset, more, lines = await asyncio.to_thread(_read_interesting, handle, offset)
                for line_offset, raw in lines:
                    refusal = self.parse(inode, line_offset, raw)
                    if refusal is not None:
                        await self._on_refusal(refusal)
                if more:
                    continue
                if self._rotated(inode):
                    handle.close()
                    handle = None
                    continue
                await asyncio.sleep(self._poll_s)
        finally:
            if handle is not None:
                handle.close()

    def _rotated(self, inode: int) -> bool:
        try:
            return self.path.stat().st_ino != inode
        except FileNotFoundError:
            return False
