"""Start the hub's MQTT link (``python -m adapters.links``) in the compose topology.

The link reads one JSON file that holds secrets (its broker password, one hub adapter token per
jurisdiction it serves). This script assembles that file from Compose secrets, so no secret
stands in ``compose.yaml``, in an environment listing or on a command line, and the broker
password has one source (``MQTT_LINK_PASSWORD``, which also goes into the broker's password file).

    python run_mqtt_link.py --hub http://hub:8000 --broker mosquitto:1883 [--print]

Secrets read from ``--secrets`` (default ``/run/secrets``):

* ``mqtt_link_password``: the broker password of the user ``liandong-link``;
* ``mqtt_link_tokens``: a JSON object, jurisdiction code → hub adapter token
  (``liandong adapters add --jurisdiction CODE --name mqtt-CODE`` prints one).

``--print`` writes the configuration with the secrets masked to standard output and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any


def build_config(args: argparse.Namespace) -> dict[str, Any]:
    secrets = Path(args.secrets)
    host, _, port = args.broker.rpartition(":")
    tokens = json.loads((secrets / "mqtt_link_tokens").read_text(encoding="utf-8"))
    if not isinstance(tokens, dict) or not tokens:
        raise SystemExit("mqtt_link_tokens: expected a JSON object of code → token")
    config: dict[str, Any] = {
        "broker": {
            "host": host,
            "port": int(port),
            "username": args.username,
            "password": (secrets / "mqtt_link_password").read_text(encoding="utf-8").strip(),
            "client_id": args.client_id,
        },
        "hub": args.hub,
        "tokens": {str(code): str(token) for code, token in tokens.items()},
    }
    if args.broker_log:
        config["broker_log"] = args.broker_log
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub", required=True, help="the hub's base URL")
    parser.add_argument("--broker", required=True, help="HOST:PORT of the MQTT broker")
    parser.add_argument("--username", default="liandong-link")
    parser.add_argument("--client-id", default="liandong-link-1", help="names the session")
    parser.add_argument("--broker-log", help="the broker's log file, to report refusals")
    parser.add_argument("--secrets", default="/run/secrets")
    parser.add_argument("--config", default="/tmp/liandong-link.json")
    parser.add_argument("--print", action="store_true", help="show the configuration and exit")
    args = parser.parse_args()
    config = build_config(args)
    if args.print:
        config["broker"]["password"] = "***"
        config["tokens"] = dict.fromkeys(config["tokens"], "***")
        print(json.dumps(config, indent=2))
        return 0
    os.umask(0o077)
    Path(args.config).write_text(json.dumps(config), encoding="utf-8")
    command = [sys.executable, "-m", "adapters.links", "--config", args.config]
    os.execv(sys.executable, command)
    return 1  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(main())
