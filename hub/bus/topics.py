"""Every topic name the hub uses, in one place, versioned.

Exercise traffic lives on separate topics (prefix ``exercise.``) so that keeping drills away from
live operations does not depend on every consumer remembering a flag.
"""

from __future__ import annotations

from hub.model.envelope import Lane

INCIDENTS = "liandong.incidents.v1"
TASKS = "liandong.tasks.v1"
TASK_UPDATES = "liandong.task-updates.v1"
RESOURCES = "liandong.resources.v1"
AUDIT = "liandong.audit.v1"
DEADLETTER = "liandong.deadletter.v1"

LIVE_TOPICS = (INCIDENTS, TASKS, TASK_UPDATES, RESOURCES, AUDIT, DEADLETTER)
EXERCISE_PREFIX = "exercise."


def for_lane(topic: str, lane: Lane) -> str:
    """The topic that carries ``lane`` traffic: exercise events never share a live topic."""
    if topic not in LIVE_TOPICS:
        raise ValueError(f"unknown topic '{topic}'")
    return EXERCISE_PREFIX + topic if lane is Lane.EXERCISE else topic


def lane_of(topic: str) -> Lane:
    return Lane.EXERCISE if topic.startswith(EXERCISE_PREFIX) else Lane.ACTUAL


ALL_TOPICS = LIVE_TOPICS + tuple(EXERCISE_PREFIX + t for t in LIVE_TOPICS)


# MQTT topics between the hub's MQTT link and a city system, one subtree per jurisdiction, so a
# broker ACL `pattern` rule can confine each city's credential to its own subtree.
MQTT_KINDS = ("incidents", "tasks", "task-updates", "status")


def mqtt_topic(jurisdiction: str, kind: str) -> str:
    """``liandong/v1/{jurisdiction}/{kind}``: incidents and task-updates go up, tasks go down,
    status carries the link's retained online/offline (last will) state."""
    if kind not in MQTT_KINDS:
        raise ValueError(f"unknown MQTT topic kind '{kind}'")
    return f"liandong/v1/{jurisdiction}/{kind}"
