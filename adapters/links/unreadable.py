"""What an adapter could not read from its city, handed to the hub's dead-letter store.

The city gets its clear error (or, on MQTT, the message is settled and counted); the bytes and
the codec's reason go to ``POST /api/v1/audit/unreadable``, which keeps them on
``liandong.deadletter.v1`` once per distinct body, so nothing is dropped silently.
"""

from __future__ import annotations

import base64
from typing import Any

KEPT_BYTES = 64 * 1024  # what the hub keeps of a refused message


def unreadable_report(
    channel: str, codec: str, media_type: str | None, raw: bytes, reason: str
) -> dict[str, Any]:
    """The body of ``POST /api/v1/audit/unreadable`` for one refused message."""
    return {
        "channel": channel,
        "codec": codec,
        "media_type": media_type,
        "reason": reason[:2000],
        "size": len(raw),
        "payload_base64": base64.b64encode(raw[:KEPT_BYTES]).decode("ascii"),
    }
