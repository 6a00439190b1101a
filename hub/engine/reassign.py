"""A declined task handed to the next candidate (pure): ``on_decline: next_candidate``.

The step is planned again on the incident message that caused the declined task, with the same
region and the same playbook version, so the candidates come out in the same order (by code) as
when the task was first issued; the first one the step has not asked yet gets a task of its own.
Its id derives from the declined task and the new target, so a resent decline, or the same
decline handled twice, cannot ask anyone twice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from hub.engine.conditions import holds
from hub.engine.duration import duration_ms
from hub.engine.operators import Facts
from hub.engine.playbook import Playbook, ResourceRequestSpec, TaskSpec
from hub.engine.spatial import Area
from hub.engine.steps import why_for, wording
from hub.engine.targets import select
from hub.model.envelope import derived_id, format_time
from hub.model.incident import Incident
from hub.model.region import ClauseKind
from hub.model.task import Task
from hub.region import Region

_KIND: dict[str, ClauseKind] = {"task": "joint_response", "request_resources": "resources"}


def declined_event_id(task_id: str) -> str:
    """The id of the ``task.declined`` event (what caused the next candidate's task)."""
    return derived_id(task_id, "task.declined")


def next_candidate(
    declined: Task,
    incident: Incident,
    asked: Collection[str],
    *,
    now_ms: int,
    playbooks: Sequence[Playbook],
    region: Region,
) -> Task | None:
    """The task for the next candidate after ``declined``, or None: the step does not say
    ``next_candidate``, or every authorised candidate has been asked (``asked``: the targets
    this step already has a task for in the thread)."""
    playbook = next(
        (
            p
            for p in playbooks
            if p.id == declined.why.playbook and p.version == declined.why.version
        ),
        None,
    )
    if playbook is None:
        return None  # the playbook changed since; its new version decides for new incidents
    step = next((s for s in playbook.steps if s.id == declined.why.step), None)
    if step is None or step.kind not in _KIND:
        return None
    spec: TaskSpec | ResourceRequestSpec = step.body
    if spec.on_decline != "next_candidate":
        return None
    area = Area(region, incident)
    info = next(
        (i for i in incident.info if holds(playbook.conditions, Facts(incident, i, area))),
        None,
    )
    if info is None:
        return None
    kept, _, _ = select(spec.targets, _KIND[step.kind], incident, info, area)
    target = next((t for t in kept if t.code not in asked and t.code != declined.target), None)
    if target is None:
        return None
    action_zh, action_en, response = wording(spec)
    reasons = [
        *declined.why.conditions[:-1],
        f"{declined.target} declined task {declined.id}; {target.code} is the next candidate",
    ]
    return Task(
        id=derived_id(declined.id, "next_candidate", target.code),
        incident=declined.incident,
        sender=declined.sender,
        target=target.code,
        action_zh=action_zh,
        action_en=action_en,
        response=response,
        issued=format_time(now_ms),
        due=format_time(now_ms + duration_ms(spec.ack_deadline)),
        lane=declined.lane,
        why=why_for(playbook, step.id, reasons, target, declined_event_id(declined.id)),
    )
