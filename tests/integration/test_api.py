"""The intake and task API against a real hub (SQLite in a temp dir), in process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import orjson

from hub.bus import topics
from hub.model.events import EventDeadLettered, IntakeRefused, TaskUpdated, decode
from hub.runtime import Hub
from tests.factories import cap, wait_for

QINGPU, WUJIANG, JIASHAN = "310118", "320509", "330421"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _tasks(client: httpx.AsyncClient, token: str, incident: str) -> list[dict[str, object]]:
    res = await client.get("/api/v1/tasks", params={"incident": incident}, headers=auth(token))
    assert res.status_code == 200, res.text
    tasks: list[dict[str, object]] = res.json()["tasks"]
    return tasks


async def _wait_tasks(
    client: httpx.AsyncClient, token: str, incident: str, n: int
) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []

    async def enough() -> bool:
        found[:] = await _tasks(client, token, incident)
        return len(found) >= n

    await wait_for(enough)
    return found


async def test_jinze_spill_end_to_end(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    qingpu, wujiang, jiashan = token(QINGPU), token(WUJIANG), token(JIASHAN)
    res = await client.post(
        "/api/v1/incidents", content=orjson.dumps(cap("jinze-1")), headers=auth(qingpu)
    )
    assert res.status_code == 202, res.text
    receipt = res.json()
    assert receipt["thread"] == "310118,jinze-1" and receipt["version"] == 1

    tasks = await _wait_tasks(client, qingpu, "jinze-1", 2)
    by_target = {t["target"]: t for t in tasks}
    assert {WUJIANG, JIASHAN} <= set(by_target)
    task = by_target[WUJIANG]
    assert task["state"] == "issued"

    # Another jurisdiction may not acknowledge Wujiang's task; nothing changes.
    denied = await client.post(f"/api/v1/tasks/{task['id']}/acknowledge", headers=auth(jiashan))
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/api/v1/tasks/{task['id']}", headers=auth(wujiang))).json()[
        "state"
    ] == "issued"

    ok = await client.post(f"/api/v1/tasks/{task['id']}/acknowledge", headers=auth(wujiang))
    assert ok.status_code == 200 and ok.json()["state"] == "acknowledged"
    again = await client.post(f"/api/v1/tasks/{task['id']}/acknowledge", headers=auth(wujiang))
    assert again.status_code == 200  # a resend is answered the same way
    updates = await hub.bus.read(topics.TASK_UPDATES, 0, 100)
    assert len(updates) == 1  # ...and recorded once
    update = decode(updates[0].value).payload_as(TaskUpdated)
    assert (update.task, update.state, update.previous) == (task["id"], "acknowledged", "issued")
    assert update.by.startswith("test-320509-")

    got = await client.get("/api/v1/incidents/jinze-1", headers=auth(wujiang))
    assert got.status_code == 200
    assert got.json()["incident"]["info"][0]["area"][0]["circle"] == ["31.03,120.90 2"]


async def test_resend_is_accepted_once_and_answered_the_same(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    qingpu = token(QINGPU)
    body = orjson.dumps(cap("dup-1"))
    first = await client.post("/api/v1/incidents", content=body, headers=auth(qingpu))
    second = await client.post("/api/v1/incidents", content=body, headers=auth(qingpu))
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second.headers["Liandong-Duplicate"] == "true"
    assert len(await hub.bus.read(topics.INCIDENTS, 0, 100)) == 1
    changed = cap("dup-1", severity="Extreme")
    conflict = await client.post(
        "/api/v1/incidents", content=orjson.dumps(changed), headers=auth(qingpu)
    )
    assert conflict.status_code == 409
    assert "different content" in conflict.json()["detail"]


async def test_sender_must_match_the_token(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    wujiang = token(WUJIANG)
    res = await client.post(
        "/api/v1/incidents", content=orjson.dumps(cap("spoof-1")), headers=auth(wujiang)
    )
    assert res.status_code == 403
    assert "320509" in res.json()["detail"] and "310118" in res.json()["detail"]
    assert await hub.bus.read(topics.INCIDENTS, 0, 10) == []
    (audit,) = await hub.bus.read(topics.AUDIT, 0, 10)
    refused = decode(audit.value).payload_as(IntakeRefused)
    assert (refused.credential_jurisdiction, refused.claimed) == (WUJIANG, QINGPU)


async def test_a_city_command_centre_speaks_for_its_districts_only(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    """Suzhou's city system (320500) reports for Wujiang (320509), a district of Suzhou, and
    answers Wujiang's tasks; it cannot report for Qingpu (Shanghai), nor answer Jiashan's tasks.
    A district's credential still speaks for that district only."""
    suzhou, wujiang = token("320500"), token(WUJIANG)
    res = await client.post(
        "/api/v1/incidents",
        content=orjson.dumps(cap("sz-1", sender=WUJIANG)),
        headers=auth(suzhou),
    )
    assert res.status_code == 202, res.text
    qingpu_claim = await client.post(
        "/api/v1/incidents", content=orjson.dumps(cap("sz-2")), headers=auth(suzhou)
    )
    assert qingpu_claim.status_code == 403
    kunshan_claim = await client.post(
        "/api/v1/incidents",
        content=orjson.dumps(cap("ks-1", sender="320583")),
        headers=auth(wujiang),
    )
    assert kunshan_claim.status_code == 403

    qingpu = token(QINGPU)
    await client.post("/api/v1/incidents", content=orjson.dumps(cap("qp-9")), headers=auth(qingpu))
    tasks = await _wait_tasks(client, qingpu, "qp-9", 2)
    by_target = {str(t["target"]): str(t["id"]) for t in tasks}
    ok = await client.post(f"/api/v1/tasks/{by_target[WUJIANG]}/acknowledge", headers=auth(suzhou))
    assert ok.status_code == 200, ok.text
    other = await client.post(
        f"/api/v1/tasks/{by_target[JIASHAN]}/acknowledge", headers=auth(suzhou)
    )
    assert other.status_code == 403


async def test_authentication_is_required(client: httpx.AsyncClient) -> None:
    res = await client.post("/api/v1/incidents", content=orjson.dumps(cap("x")))
    assert res.status_code == 401
    assert res.headers["www-authenticate"] == "Bearer"
    bad = await client.post("/api/v1/incidents", content=b"{}", headers=auth("ld_forged"))
    assert bad.status_code == 401


async def test_invalid_incidents_name_the_field(
    client: httpx.AsyncClient, token: Callable[[str], str]
) -> None:
    qingpu = token(QINGPU)
    message = cap("bad-1")
    message["info"][0]["severity"] = "Catastrophic"
    res = await client.post(
        "/api/v1/incidents", content=orjson.dumps(message), headers=auth(qingpu)
    )
    assert res.status_code == 422
    assert res.headers["content-type"] == "application/problem+json"
    problem = res.json()
    assert problem["errors"][0]["field"] == "info[0].severity"
    assert "Extreme" in problem["errors"][0]["problem"]

    malformed = await client.post(
        "/api/v1/incidents", content=b'{"identifier": ', headers=auth(qingpu)
    )
    assert malformed.status_code == 422
    assert "JSON" in malformed.json()["detail"]

    # A credential for a code that is not in the region cannot report for it either.
    stranger = token("999999")
    unknown = await client.post(
        "/api/v1/incidents",
        content=orjson.dumps(cap("bad-2", sender="999999")),
        headers=auth(stranger),
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "sender"

    xml = await client.post(
        "/api/v1/incidents",
        content=b"<alert/>",
        headers={**auth(qingpu), "content-type": "application/cap+xml"},
    )
    assert xml.status_code == 422  # XML without CAP's namespace is not CAP
    assert "namespace" in xml.json()["detail"]
    yaml = await client.post(
        "/api/v1/incidents", content=b"a: 1", headers={**auth(qingpu), "content-type": "text/yaml"}
    )
    assert yaml.status_code == 415
    assert "application/cap+xml" in yaml.json()["detail"]

    big = orjson.dumps(cap("big", note="x" * 1_100_000))
    assert (
        await client.post("/api/v1/incidents", content=big, headers=auth(qingpu))
    ).status_code == 413


async def test_update_adds_a_version_and_cancel_cancels_open_tasks(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    qingpu, wujiang = token(QINGPU), token(WUJIANG)
    sent = "2026-07-01T08:30:00+08:00"
    await client.post("/api/v1/incidents", content=orjson.dumps(cap("th-1")), headers=auth(qingpu))
    tasks = await _wait_tasks(client, qingpu, "th-1", 2)
    first_ids = {t["id"] for t in tasks}
    wujiang_task = next(t for t in tasks if t["target"] == WUJIANG)
    await client.post(f"/api/v1/tasks/{wujiang_task['id']}/acknowledge", headers=auth(wujiang))

    update = cap(
        "th-2", msg_type="Update", references=f"{QINGPU},th-1,{sent}", circle="31.03,120.90 4"
    )
    res = await client.post("/api/v1/incidents", content=orjson.dumps(update), headers=auth(qingpu))
    assert res.status_code == 202 and res.json()["version"] == 2
    assert res.json()["thread"] == "310118,th-1"
    versions = (await client.get("/api/v1/incidents/th-2", headers=auth(qingpu))).json()["versions"]
    assert [v["msgType"] for v in versions] == ["Alert", "Update"]

    # The update re-plans the same thread: the same targets keep their tasks (same ids).
    await hub_idle(hub)
    after_update = await _tasks(client, qingpu, "th-2")
    assert first_ids <= {t["id"] for t in after_update}
    assert len(after_update) == len({t["id"] for t in after_update})

    cancel = cap("th-3", msg_type="Cancel", references=f"{QINGPU},th-1,{sent}")
    assert (
        await client.post("/api/v1/incidents", content=orjson.dumps(cancel), headers=auth(qingpu))
    ).status_code == 202
    await hub_idle(hub)
    states = {t["target"]: t["state"] for t in await _tasks(client, qingpu, "th-1")}
    assert set(states.values()) == {"cancelled"}


async def hub_idle(hub: Hub) -> None:
    """Wait until the engine has committed everything on the incidents topic."""

    async def caught_up() -> bool:
        end = (await hub.bus.end_offsets([topics.INCIDENTS]))[topics.INCIDENTS]
        done = (await hub.bus.committed("engine", [topics.INCIDENTS]))[topics.INCIDENTS]
        return done >= end

    await wait_for(caught_up)


async def test_exercise_incidents_stay_on_exercise_topics(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    qingpu = token(QINGPU)
    res = await client.post(
        "/api/v1/incidents",
        content=orjson.dumps(cap("drill-1", status="Exercise")),
        headers=auth(qingpu),
    )
    assert res.status_code == 202
    tasks = await _wait_tasks(client, qingpu, "drill-1", 2)
    assert {t["lane"] for t in tasks} == {"exercise"}
    assert await hub.bus.read(topics.INCIDENTS, 0, 10) == []
    assert await hub.bus.read(topics.TASKS, 0, 10) == []
    exercise_tasks = await hub.bus.read("exercise." + topics.TASKS, 0, 10)
    assert {decode(r.value).envelope.status for r in exercise_tasks} == {"exercise"}


async def test_test_status_is_recorded_but_not_acted_on(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    qingpu = token(QINGPU)
    res = await client.post(
        "/api/v1/incidents", content=orjson.dumps(cap("t-1", status="Test")), headers=auth(qingpu)
    )
    assert res.status_code == 202
    await hub_idle(hub)
    assert await _tasks(client, qingpu, "t-1") == []


async def test_health_metrics_and_overview(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    qingpu = token(QINGPU)
    await client.post("/api/v1/incidents", content=orjson.dumps(cap("m-1")), headers=auth(qingpu))
    await _wait_tasks(client, qingpu, "m-1", 2)
    await hub_idle(hub)
    text = (await client.get("/metrics")).text
    assert 'liandong_incidents_accepted_total{lane="actual"} 1.0' in text
    assert "liandong_tasks_issued_total" in text
    assert "liandong_bus_lag" in text
    page = await client.get("/")
    assert page.status_code == 200 and "联动" in page.text
    assert (await client.get("/api/v1/overview")).status_code == 401  # sign in first
    overview = (await client.get("/api/v1/overview", headers=auth(qingpu))).json()
    assert overview["incidents"][0]["incident"]["identifier"] == "m-1"
    assert overview["names"][QINGPU] == "青浦区"


async def test_transport_refusals_are_recorded_once_for_their_own_credential(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    suzhou = token("320505")
    report = {
        "id": "8b7c1d2e-0000-4000-8000-000000000001",
        "transport": "mqtt",
        "credential": "320505",
        "client_id": "suzhou-cmd",
        "topic": "liandong/v1/330400/incidents",
        "jurisdiction_claimed": "330400",
        "reason": "PUBLISH denied by the broker ACL (reason code 135)",
        "observed": "2026-07-01T08:30:00+08:00",
    }
    first = await client.post("/api/v1/audit/refusals", json=report, headers=auth(suzhou))
    again = await client.post("/api/v1/audit/refusals", json=report, headers=auth(suzhou))
    assert first.status_code == again.status_code == 202
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    (audit,) = await hub.bus.read(topics.AUDIT, 0, 10)
    refused = decode(audit.value).payload_as(IntakeRefused)
    assert (refused.credential_jurisdiction, refused.claimed) == ("320505", "330400")
    assert refused.topic == "liandong/v1/330400/incidents" and refused.transport == "mqtt"

    other = await client.post("/api/v1/audit/refusals", json=report, headers=auth(token(JIASHAN)))
    assert other.status_code == 403
    assert len(await hub.bus.read(topics.AUDIT, 0, 10)) == 1


async def test_cap_xml_on_the_same_endpoint(
    client: httpx.AsyncClient, token: Callable[[str], str]
) -> None:
    from hub.codecs.cap import encode_cap
    from hub.model.incident import Incident

    qingpu = token(QINGPU)
    xml = encode_cap(Incident.model_validate(cap("xml-1")))
    headers = {**auth(qingpu), "content-type": "application/cap+xml"}
    res = await client.post("/api/v1/incidents", content=xml, headers=headers)
    assert res.status_code == 202, res.text
    tasks = await _wait_tasks(client, qingpu, "xml-1", 2)
    assert {WUJIANG, JIASHAN} <= {t["target"] for t in tasks}
    # The same message as JSON is the same message: a resend, answered the same way.
    same = await client.post(
        "/api/v1/incidents", content=orjson.dumps(cap("xml-1")), headers=auth(qingpu)
    )
    assert same.status_code == 202 and same.headers["Liandong-Duplicate"] == "true"

    bad = xml.replace(b"<urgency>Immediate</urgency>", b"<urgency>Soon</urgency>")
    refused = await client.post("/api/v1/incidents", content=bad, headers=headers)
    assert refused.status_code == 422
    problem = refused.json()
    assert "urgency" in problem["errors"][0]["field"] and "Soon" in problem["errors"][0]["problem"]
    xxe = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
    hostile = await client.post("/api/v1/incidents", content=xxe, headers=headers)
    assert hostile.status_code == 422 and "DTD" in hostile.json()["detail"]


async def test_refused_messages_are_kept_with_the_reason_and_the_rest_flows(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    """Bad input between good messages: each gets its clear 4xx, its bytes go to the dead-letter
    topic with the reason (once, however often resent), and the good ones before and after are
    stored and planned as usual. Anonymous bodies are not kept."""
    qingpu = token(QINGPU)
    bad_severity = cap("dl-bad")
    bad_severity["info"][0]["severity"] = "Catastrophic"
    sends: list[tuple[bytes, str, int]] = [
        (orjson.dumps(cap("dl-before")), "application/json", 202),
        (b'{"identifier": ', "application/json", 422),
        (orjson.dumps(bad_severity), "application/json", 422),
        (b"<alert xmlns='urn:wrong'/>", "application/cap+xml", 422),
        (b"a: 1", "text/yaml", 415),
        (orjson.dumps(cap("dl-big", note="x" * 1_100_000)), "application/json", 413),
        (b'{"identifier": ', "application/json", 422),  # the same bytes again
        (orjson.dumps(cap("dl-after")), "application/json", 202),
    ]
    for body, media, status in sends:
        headers = {**auth(qingpu), "content-type": media}
        res = await client.post("/api/v1/incidents", content=body, headers=headers)
        assert res.status_code == status, (body[:40], res.text)
    anonymous = await client.post("/api/v1/incidents", content=b"{")
    assert anonymous.status_code == 401

    letters = [decode(r.value) for r in await hub.bus.read(topics.DEADLETTER, 0, 100)]
    kept = [e.payload_as(EventDeadLettered) for e in letters]
    assert [k.media_type for k in kept] == [
        "application/json",
        "application/json",
        "application/cap+xml",
        "text/yaml",
        "application/json",
    ]
    malformed, severity, xml, yaml, big = kept
    assert malformed.payload == '{"identifier": ' and "JSON" in malformed.reason
    assert malformed.reason.startswith("422 ")
    assert "info[0].severity" in severity.reason and "Catastrophic" in severity.payload
    assert "namespace" in xml.reason
    assert yaml.reason.startswith("415 ") and yaml.payload == "a: 1"
    assert big.reason.startswith("413 ") and big.size is not None and big.size > 1_000_000
    assert big.kept == len(big.payload) <= 64 * 1024
    assert {k.adapter for k in kept} == {letters[0].envelope.source.rsplit("/", 1)[-1]}
    assert {e.envelope.jurisdiction for e in letters} == {QINGPU}

    before = await _wait_tasks(client, qingpu, "dl-before", 2)
    after = await _wait_tasks(client, qingpu, "dl-after", len(before))
    assert {t["target"] for t in after} == {t["target"] for t in before}


EDXL = Path(__file__).resolve().parent.parent / "fixtures" / "edxl"


async def test_edxl_de_envelopes_on_the_same_endpoint(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    """An EDXL-DE 1.0 or 2.0 envelope posted as XML: its CAP alerts are unwrapped and reported
    (one receipt each); an envelope whose status contradicts its alert is refused and kept."""
    wujiang, qingpu = token(WUJIANG), token(QINGPU)
    xml = {"content-type": "application/xml"}
    res = await client.post(
        "/api/v1/incidents",
        content=(EDXL / "de10_taipu_spill.xml").read_bytes(),
        headers={**auth(wujiang), **xml},
    )
    assert res.status_code == 202, res.text
    (receipt,) = res.json()["receipts"]
    assert receipt["identifier"] == "WJ-2026-0701-001" and receipt["sender"] == WUJIANG
    assert "Liandong-Duplicate" not in res.headers

    res = await client.post(
        "/api/v1/incidents",
        content=(EDXL / "de20_taipu_exercise.xml").read_bytes(),
        headers={**auth(qingpu), **xml},
    )
    assert res.status_code == 202, res.text
    (receipt,) = res.json()["receipts"]
    stored = await client.get(
        f"/api/v1/incidents/{receipt['identifier']}",
        params={"sender": QINGPU},
        headers=auth(qingpu),
    )
    assert stored.status_code == 200 and stored.json()["incident"]["status"] == "Exercise"

    wrong_sender = await client.post(
        "/api/v1/incidents",
        content=(EDXL / "de10_taipu_spill.xml").read_bytes(),
        headers={**auth(qingpu), **xml},
    )
    assert wrong_sender.status_code == 403

    mismatch = await client.post(
        "/api/v1/incidents",
        content=(EDXL / "de10_status_mismatch.xml").read_bytes(),
        headers={**auth(wujiang), **xml},
    )
    assert mismatch.status_code == 422
    assert "Exercise" in mismatch.json()["detail"] and "Actual" in mismatch.json()["detail"]
    letters = [decode(r.value) for r in await hub.bus.read(topics.DEADLETTER, 0, 100)]
    assert any("Exercise" in e.payload_as(EventDeadLettered).reason for e in letters)


async def test_adapters_hand_over_what_their_codec_could_not_read(
    client: httpx.AsyncClient, token: Callable[[str], str], hub: Hub
) -> None:
    import base64

    qingpu = token(QINGPU)
    raw = b'{"shijian": {"dengji": "7"}}'
    report = {
        "channel": "incidents",
        "codec": "dialect",
        "media_type": "application/json",
        "reason": "native field 'shijian.dengji': unknown code '7'",
        "size": len(raw),
        "payload_base64": base64.b64encode(raw).decode(),
    }
    first = await client.post("/api/v1/audit/unreadable", json=report, headers=auth(qingpu))
    again = await client.post("/api/v1/audit/unreadable", json=report, headers=auth(qingpu))
    assert (first.status_code, again.status_code) == (202, 202)
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    bad = await client.post(
        "/api/v1/audit/unreadable",
        json={**report, "payload_base64": "not base64!"},
        headers=auth(qingpu),
    )
    assert bad.status_code == 400 and "base64" in bad.text
    anonymous = await client.post("/api/v1/audit/unreadable", json=report)
    assert anonymous.status_code == 401

    (letter,) = [decode(r.value) for r in await hub.bus.read(topics.DEADLETTER, 0, 10)]
    kept = letter.payload_as(EventDeadLettered)
    assert kept.payload == raw.decode() and "unknown code '7'" in kept.reason
    assert kept.topic == "adapter dialect codec, incidents" and kept.size == len(raw)
    assert letter.envelope.jurisdiction == QINGPU
