"""Runs ``liandong bench NAME --json --quick`` as a user would, for the benchmark tests."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import orjson

LIANDONG = [sys.executable, "-c", "from hub.cli import main; main()"]


def quick_bench(name: str, timeout_s: float) -> dict[str, Any]:
    """The one JSON object the quick benchmark prints; fails the test if it exits non-zero or
    prints anything but one line."""
    done = subprocess.run(
        [*LIANDONG, "bench", name, "--json", "--quick"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout[-3000:]
    result: dict[str, Any] = orjson.loads(lines[0])
    return result


def positive(value: object) -> bool:
    """A finite number above zero (a figure a benchmark must have measured)."""
    return isinstance(value, int | float) and math.isfinite(value) and value > 0
