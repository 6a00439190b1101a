"""``python -m adapters.links --config link.json``: run the MQTT link.

The configuration file (JSON; keep it readable by the link's user only, it holds secrets)::

    {
      "broker": {"host": "mosquitto", "port": 1883, "username": "liandong-link",
                 "password": "...", "client_id": "liandong-link-1"},
      "hub": "http://127.0.0.1:8000",
      "tokens": {"310118": "ld_...", "320509": "ld_..."},
      "resend_interval_s": 30,
      "poll_interval_s": 1,
      "broker_log": "/var/log/mosquitto/mosquitto.log"
    }

``broker`` takes every field of ``MqttEndpoint``; ``tokens`` maps each jurisdiction the link
serves to that jurisdiction's hub adapter token (``liandong adapters add``); ``broker_log`` is
optional (without it, refused publishes are not reported to the hub). ``--trace FILE`` appends
one JSON line per message forwarded to the hub: kind, jurisdiction, key, HTTP status, the wall
clock when the hub answered and how long it took (ns); written as it happens (unbuffered).
SIGTERM or SIGINT stops the link; unacknowledged messages stay with the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import orjson

from adapters.links.link_config import Forwarded, LinkConfig
from adapters.links.mqtt_link import MqttLink
from adapters.transports.mqtt import MqttEndpoint

_LINK_KEYS = frozenset({"resend_interval_s", "poll_interval_s", "lanes", "http_timeout_s"})


def load_config(path: Path) -> LinkConfig:
    raw: dict[str, Any] = orjson.loads(path.read_bytes())
    unknown = set(raw) - {"broker", "hub", "tokens", "broker_log"} - _LINK_KEYS
    if unknown:
        raise ValueError(f"unknown keys in {path}: {sorted(unknown)}")
    extra = {key: raw[key] for key in _LINK_KEYS if key in raw}
    return LinkConfig(
        broker=MqttEndpoint(**raw["broker"]),
        hub_url=raw["hub"],
        tokens={str(code): str(token) for code, token in raw["tokens"].items()},
        broker_log=Path(raw["broker_log"]) if raw.get("broker_log") else None,
        **extra,
    )


async def _main(config: LinkConfig, trace: IO[bytes] | None) -> None:
    def traced(item: Forwarded) -> None:
        assert trace is not None
        line = {
            "kind": item.kind,
            "jurisdiction": item.jurisdiction,
            "key": item.key,
            "status": item.status,
            "at_ns": item.at_ns,
            "hub_ns": item.hub_ns,
        }
        trace.write(orjson.dumps(line) + b"\n")

    link = MqttLink(config, on_forwarded=traced if trace is not None else None)
    runner = asyncio.create_task(link.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await runner
    logging.getLogger("adapters.links").info("link stopped: %s", dict(link.stats))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (it comes with uvicorn[standard]): less CPU per message."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adapters.links", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="the link's JSON file")
    parser.add_argument("--trace", type=Path, help="append a JSON line per forwarded message")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    try:
        config = load_config(args.config)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: bad link configuration {args.config}: {exc}", file=sys.stderr)
        return 2
    trace = args.trace.open("ab", buffering=0) if args.trace else None
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_main(config, trace))
    finally:
        if trace is not None:
            trace.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
