"""Helpers for tests of the console: console users through the CLI, and a reader of the
server-sent events of ``GET /api/v1/stream``."""

from __future__ import annotations

import queue
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.integration.hubproc import _CLI, CLI_TIMEOUT_S, hub_env


def add_user(
    data_dir: Path,
    username: str,
    role: str,
    jurisdiction: str | None,
    password: str,
    env: dict[str, str] | None = None,
) -> None:
    """``liandong users add`` as an operator runs it (the password through a file)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = data_dir.parent / f".{username}.password"
    secret.write_text(password + "\n", encoding="utf-8")
    argv = [*_CLI, "users", "add", username, "--role", role, "--password-file", str(secret)]
    if jurisdiction is not None:
        argv += ["--jurisdiction", jurisdiction]
    argv += ["--data", str(data_dir)]
    done = subprocess.run(
        argv, env=hub_env(env), capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False
    )
    secret.unlink()
    if done.returncode != 0:
        raise RuntimeError(f"liandong users add {username} failed: {done.stderr.strip()}")


def read_events(
    client: httpx.Client, into: queue.Queue[dict[str, Any]], ready: threading.Barrier
) -> None:
    """Follow the stream: every event (not ``hello``) goes to ``into``; ``ready`` is passed
    once the hub said hello (the reader is registered)."""
    try:
        with client.stream("GET", "/api/v1/stream", timeout=httpx.Timeout(10.0, read=60.0)) as s:
            if s.status_code != 200:
                raise AssertionError(f"stream answered {s.status_code}")
            kind = None
            for line in s.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    if kind == "hello":
                        ready.wait()
                    else:
                        into.put(orjson.loads(line[6:]))
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return  # the hub stopped at the end of the test module
