"""Exercise tasks at a city's door, the same for every way tasks leave (HTTP feed, MQTT link).

A city system configured as live-only never receives an exercise task (the isolation guard); any
other receives it with its action texts marked 演练 / EXERCISE (its CAP status, Exercise, comes
from the task's lane).
"""

from __future__ import annotations

from typing import Any

from hub.drills.isolation import EXERCISE_MARK_EN, EXERCISE_MARK_ZH


def mark_exercise(task: dict[str, Any]) -> dict[str, Any]:
    """An exercise task as a city receives it: its action texts say 演练 / EXERCISE."""
    out = dict(task)
    for name, mark in (("action_zh", EXERCISE_MARK_ZH), ("action_en", EXERCISE_MARK_EN)):
        text = str(out.get(name) or "")
        if not text.startswith(mark):
            out[name] = mark + text
    return out


def for_city(task: dict[str, Any], live_only: bool) -> dict[str, Any] | None:
    """``task`` as the city may receive it, or None: an exercise task for a live-only city."""
    if task.get("lane") != "exercise":
        return task
    return None if live_only else mark_exercise(task)
