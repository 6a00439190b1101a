"""Tasks and answers as CAP 1.2 messages, for city systems that speak only CAP.

**A task** goes to the city as a CAP alert from the hub (``sender`` = the codec's
``task_sender``, default ``liandong``): ``identifier`` = the task id, ``scope`` Private,
``addresses`` = the target jurisdiction, ``incidents`` = the incident thread, ``status``
Actual or Exercise from the task's lane, one ``info`` in Chinese and one in English with the
action as ``instruction`` and ``responseType`` Execute. The task's facts ride as ``parameter``
pairs named ``liandong:*`` (task, response, due, state, reporter, playbook, agreement, ...).
An escalated task is still sent as the task (the city may never have had it); the cancellation
of a delivered task is a CAP Cancel with ``identifier`` ``{task id}.cancelled`` and
``references`` naming the task message (its ``sent`` is the task's, as the task carries no
time of cancellation).

**An answer** from the city is a CAP Ack or Error that ``references`` the task message
(``liandong,{task id},{sent}``); ``note`` carries the city's own reason text, and a ``code``
``LIANDONG:acknowledge|accept|decline|done`` says which answer it is. Without such a code an
Ack acknowledges and an Error declines (CAP's Error "indicates rejection of the message").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from adapters.framework.task_feed import FIRST_STATES
from adapters.links.mqtt_protocol import Answer, TaskAnswer
from hub.errors import InvalidInput
from hub.model.incident import Incident, MsgType

__all__ = ["ANSWER_CODE_PREFIX", "answer_from_cap", "answer_to_cap", "task_to_cap"]

ANSWER_CODE_PREFIX = "LIANDONG:"
CHINA = timezone(timedelta(hours=8), "CST")  # the region's civil time, as CAP senders write it
_STATUS = {"actual": "Actual", "exercise": "Exercise", "test": "Test"}
_EVENT = {"zh-CN": "区域应急联动任务", "en-US": "Liandong joint-response task"}
_SENDER_NAME = {"zh-CN": "长三角应急联动枢纽", "en-US": "Liandong regional coordination hub"}


def cap_time(text: str) -> str:
    """A hub timestamp (RFC 3339, perhaps ``Z`` and milliseconds) as a CAP dateTime in
    China Standard Time, whole seconds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"task timestamp '{text}' is not RFC 3339") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(CHINA).replace(microsecond=0).isoformat()


def _field(task: dict[str, Any], name: str) -> Any:
    value = task.get(name)
    if value is None or value == "":
        raise InvalidInput(f"task: field '{name}' is missing")
    return value


def task_to_cap(task: dict[str, Any], sender: str = "liandong") -> Incident:
    """The CAP message for a task as ``GET /api/v1/tasks`` returns it."""
    task_id = str(_field(task, "id"))
    state = str(task.get("state", "issued"))
    issued = cap_time(str(_field(task, "issued")))
    why = task.get("why") or {}
    parameters = [
        ("liandong:task", task_id),
        ("liandong:response", str(task.get("response", "acknowledge"))),
        ("liandong:due", cap_time(str(_field(task, "due")))),
        ("liandong:state", state),
        ("liandong:reporter", str(_field(task, "sender"))),
    ]
    if why:
        parameters += [
            ("liandong:playbook", f"{why.get('playbook')} v{why.get('version')}"),
            ("liandong:step", str(why.get("step"))),
            ("liandong:agreement", f"{why.get('agreement')} clause {why.get('clause')}"),
        ]
    actions = {"zh-CN": str(_field(task, "action_zh")), "en-US": str(_field(task, "action_en"))}
    infos = [
        {
            "language": language,
            "category": ["Other"],
            "event": _EVENT[language],
            "responseType": ["Execute"],
            "urgency": "Immediate",
            "severity": "Unknown",
            "certainty": "Unknown",
            "effective": issued,
            "senderName": _SENDER_NAME[language],
            "headline": action[:160],
            "instruction": action,
            "parameter": [{"valueName": n, "value": v} for n, v in parameters],
        }
        for language, action in actions.items()
    ]
    message: dict[str, Any] = {
        "identifier": task_id,
        "sender": sender,
        "sent": issued,
        "status": _STATUS.get(str(task.get("lane", "actual")), "Actual"),
        "msgType": "Alert",
        "scope": "Private",
        "addresses": str(_field(task, "target")),
        "code": ["LIANDONG-TASK-1"],
        "incidents": str(_field(task, "incident")).replace(" ", ""),
        "info": infos,
    }
    if state not in FIRST_STATES:
        # A change of a task already sent: its own identifier, pointing at the task message.
        message["identifier"] = f"{task_id}.{state}"
        message["msgType"] = "Cancel" if state == "cancelled" else "Update"
        message["references"] = f"{sender},{task_id},{issued}"
        message["note"] = f"task {state}"
    return Incident.model_validate(message)


def answer_from_cap(message: Incident, task_sender: str = "liandong") -> TaskAnswer | None:
    """The answer a CAP Ack/Error gives to a hub task; None if the message answers no task of
    the hub (it is then an incident, or not for us). ``InvalidInput`` for a malformed answer."""
    if message.msgType not in (MsgType.ACK, MsgType.ERROR):
        return None
    tasks = [ref.identifier for ref in message.referenced() if ref.sender == task_sender]
    if not tasks:
        return None
    task_ids = sorted({identifier.split(".", 1)[0] for identifier in tasks})
    if len(task_ids) > 1:
        raise InvalidInput(f"references: an answer names one task, not {len(task_ids)}")
    codes = [c[len(ANSWER_CODE_PREFIX) :].lower() for c in message.code if _is_answer_code(c)]
    if len(codes) > 1:
        raise InvalidInput(f"code: one {ANSWER_CODE_PREFIX}* answer code, not {len(codes)}")
    if codes:
        try:
            answer = Answer(codes[0])
        except ValueError:
            choices = ", ".join(a.value for a in Answer)
            raise InvalidInput(
                f"code: '{ANSWER_CODE_PREFIX}{codes[0]}' is not one of {choices}"
            ) from None
    else:
        answer = Answer.ACKNOWLEDGE if message.msgType is MsgType.ACK else Answer.DECLINE
    if message.msgType is MsgType.ERROR and answer is not Answer.DECLINE:
        raise InvalidInput(f"msgType: an Error declines; it cannot {answer.value}")
    reason = (message.note or "").strip() or None
    if answer is Answer.DECLINE and reason is None:
        raise InvalidInput("note: a decline needs the reason in <note>")
    return TaskAnswer(task=task_ids[0], answer=answer, reason=reason)


def _is_answer_code(code: str) -> bool:
    return code.upper().startswith(ANSWER_CODE_PREFIX)


def answer_to_cap(
    answer: TaskAnswer,
    *,
    sender: str,
    identifier: str,
    sent: str,
    task_sent: str,
    task_sender: str = "liandong",
    status: str = "Actual",
) -> Incident:
    """The CAP Ack (or Error, for a decline) a city sends to answer a task: what integrators
    build, shown here for the fixtures, the tests and the simulator."""
    message: dict[str, Any] = {
        "identifier": identifier,
        "sender": sender,
        "sent": sent,
        "status": status,
        "msgType": "Error" if answer.answer is Answer.DECLINE else "Ack",
        "scope": "Private",
        "addresses": task_sender,
        "code": [f"{ANSWER_CODE_PREFIX}{answer.answer.value}"],
        "references": f"{task_sender},{answer.task},{task_sent}",
    }
    if answer.reason:
        message["note"] = answer.reason
    return Incident.model_validate(message)
