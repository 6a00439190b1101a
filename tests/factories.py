"""Builders for test inputs: canonical incidents, and a bounded wait."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest


def cap(
    identifier: str,
    sender: str = "310118",
    *,
    category: str = "Env",
    severity: str = "Severe",
    circle: str | None = "31.03,120.90 2",
    msg_type: str = "Alert",
    references: str | None = None,
    status: str = "Actual",
    sent: str = "2026-07-01T08:30:00+08:00",
    **extra: Any,
) -> dict[str, Any]:
    """A canonical incident (CAP 1.2 as JSON); defaults: the Jinze spill on the Taipu River."""
    area: dict[str, Any] = {"areaDesc": "青浦区金泽镇太浦河段"}
    if circle:
        area["circle"] = [circle]
    message: dict[str, Any] = {
        "identifier": identifier,
        "sender": sender,
        "sent": sent,
        "status": status,
        "msgType": msg_type,
        "scope": "Public",
        "info": [
            {
                "language": "zh-CN",
                "category": [category],
                "event": "太浦河化学品泄漏",
                "urgency": "Immediate",
                "severity": severity,
                "certainty": "Observed",
                "area": [area],
            }
        ],
        **extra,
    }
    if references:
        message["references"] = references
    return message


async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float = 5.0) -> None:
    """Poll ``check`` until it holds; fails the test after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout_s} s")
        await asyncio.sleep(0.02)
