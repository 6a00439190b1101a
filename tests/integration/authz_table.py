"""Who may call which route: the one table ``test_authz_walk.py`` checks every route against.

Every route of the app (and the front door's ``POST /api/v1/incidents``) needs a ``Rule`` here;
a route without one fails the walk, named by method and path. Add yours when you add a route.

The actors (``ACTORS``): ``anonymous``; ``officer_a``, a duty officer of A = Wujiang (320509);
``officer_b``, a duty officer of B = Jiashan (330421); ``coordinator``; ``admin``; ``adapter_a``,
Wujiang's adapter token. Users send their session cookie and the session's CSRF token; the walk
also sends every state change once more without the token and expects 403.

Objects of A, filled into ``url`` and ``body`` (``{name}`` placeholders): ``incident`` and
``sender`` (an incident Qingpu reported, whose tasks go to Wujiang and Jiashan), ``task`` (its
task addressed to Wujiang), ``hold`` (a hold awaiting approval on Wujiang's depot, requested by
Qingpu), ``walker`` (a user the sign-in rule signs in as), ``password``, ``cap_of_a`` (a new
incident of A as CAP JSON), ``console_asset`` (a file of the console), ``victim`` (an officer
an administrator may disable), ``actor`` (the caller's name in this table).

Expected outcomes: ``2xx``, ``401``, ``403`` or ``404``. For every 401/403/404 the walk checks
that nothing changed in the database (every table but sessions and sign-in attempts, the log
included). ``fresh`` names a factory in ``FRESH`` run before each actor expected to succeed,
for routes a second success would refuse (approving a hold twice is a 409).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

ACTORS = ("anonymous", "officer_a", "officer_b", "coordinator", "admin", "adapter_a")
USERS = ("officer_a", "officer_b", "coordinator", "admin")


def expect(
    anonymous: str, officer_a: str, officer_b: str, coordinator: str, admin: str, adapter_a: str
) -> dict[str, str]:
    return dict(
        zip(ACTORS, (anonymous, officer_a, officer_b, coordinator, admin, adapter_a), strict=True)
    )


OPEN = expect("2xx", "2xx", "2xx", "2xx", "2xx", "2xx")
SIGNED_IN = expect("401", "2xx", "2xx", "2xx", "2xx", "2xx")  # any user or adapter reads
ADAPTER_ONLY = expect("401", "401", "401", "401", "401", "2xx")  # bearer token routes
OWNER_OF_A = expect("401", "2xx", "403", "403", "403", "2xx")  # acts for A only
ACTS_FOR_OWN = expect("401", "2xx", "2xx", "403", "403", "2xx")  # for one's own jurisdiction
DRILL_CONTROL = expect("401", "403", "403", "2xx", "2xx", "403")  # coordinator or admin
USER_SESSION = expect("401", "2xx", "2xx", "2xx", "2xx", "401")  # the session itself


@dataclass(frozen=True)
class Rule:
    method: str
    path: str  # the route's path as declared
    url: str  # the request's path and query, placeholders filled from the objects of A
    expect: dict[str, str]
    body: Any = None  # sent as JSON (placeholders in strings filled too)
    raw: bytes | None = None  # sent as is (the front door reads CAP), instead of ``body``
    fresh: str | None = None  # a factory of ``FRESH`` run before each expected success
    stream: bool = False  # an endless response: only its status is read
    csrf: bool = True  # a state change a missing CSRF token must refuse
    ends_session: bool = False  # signs the user out (the walk signs in again)
    why: str = field(default="", compare=False)


REFUSAL = {
    "id": "walk-{actor}",
    "transport": "mqtt",
    "credential": "320509",
    "client_id": "wujiang-link",
    "topic": "liandong/320509/incidents",
    "reason": "not authorised",
    "observed": "2026-11-22T08:00:00+08:00",
}
UNREADABLE = {
    "channel": "incidents",
    "codec": "dialect",
    "reason": "not JSON",
    "size": 4,
    "payload_base64": "e3t7ew==",
}
DRILL = {"source": "taipu-pollution-chain", "speed": "max", "registry": "none"}
PLAN = {"item": "sandbag", "quantity": 10, "lat": 30.85, "lon": 120.90}
REQUEST = {
    "request": "walk-1",
    "item": "sandbag",
    "lines": [
        {
            "depot": "qingpu-1",
            "quantity": 10,
            "agreement": "qingpu-suzhou-jiaxing-alliance-2021",
            "clause": "8",
        }
    ],
}

RULES: list[Rule] = [
    # operations and the console's pages: open (the pages carry no data; the API they call
    # needs sign-in)
    Rule("GET", "/healthz", "/healthz", OPEN),
    Rule("GET", "/metrics", "/metrics", OPEN),
    Rule("GET", "/openapi.json", "/openapi.json", OPEN),
    Rule("GET", "/docs", "/docs", OPEN),
    Rule("GET", "/docs/oauth2-redirect", "/docs/oauth2-redirect", OPEN),
    Rule("GET", "/redoc", "/redoc", OPEN),
    Rule("GET", "/", "/", OPEN),
    Rule("GET", "/console/{name:path}", "/console/{console_asset}", OPEN),
    # sign-in
    Rule(
        "POST",
        "/api/v1/session",
        "/api/v1/session",
        OPEN,
        body={"username": "{walker}", "password": "{password}"},
        csrf=False,
        why="signing in is open (rate-limited); JSON only, against login CSRF",
    ),
    Rule("GET", "/api/v1/session", "/api/v1/session", USER_SESSION),
    Rule("DELETE", "/api/v1/session", "/api/v1/session", USER_SESSION, ends_session=True),
    # incidents: adapters report; everyone signed in reads
    Rule(
        "POST",
        "/api/v1/incidents",
        "/api/v1/incidents",
        ADAPTER_ONLY,
        raw=b"{cap_of_a}",
        why="the front door authenticates adapter tokens only; it reads no cookie",
    ),
    Rule(
        "GET",
        "/api/v1/incidents/{identifier}",
        "/api/v1/incidents/{incident}?sender={sender}",
        SIGNED_IN,
    ),
    Rule(
        "GET",
        "/api/v1/incidents/{identifier}/explain",
        "/api/v1/incidents/{incident}/explain?sender={sender}",
        SIGNED_IN,
    ),
    Rule("GET", "/api/v1/overview", "/api/v1/overview", SIGNED_IN),
    Rule("GET", "/api/v1/stream", "/api/v1/stream", SIGNED_IN, stream=True),
    Rule("GET", "/api/v1/region/map", "/api/v1/region/map", SIGNED_IN),
    Rule("GET", "/api/v1/playbooks", "/api/v1/playbooks", SIGNED_IN),
    # tasks: everyone signed in reads; only whoever speaks for the target answers
    Rule("GET", "/api/v1/tasks", "/api/v1/tasks?incident={incident}", SIGNED_IN),
    Rule("GET", "/api/v1/tasks/{task_id}", "/api/v1/tasks/{task}", SIGNED_IN),
    Rule(
        "POST",
        "/api/v1/tasks/{task_id}/{answer}",
        "/api/v1/tasks/{task}/acknowledge",
        OWNER_OF_A,
        why="a coordinator does not answer other jurisdictions' tasks",
    ),
    # stock
    Rule("GET", "/api/v1/resources/balances", "/api/v1/resources/balances", SIGNED_IN),
    Rule("GET", "/api/v1/resources/holds", "/api/v1/resources/holds", SIGNED_IN),
    Rule(
        "POST",
        "/api/v1/resources/plans",
        "/api/v1/resources/plans",
        ACTS_FOR_OWN,
        body=PLAN,
        why="a plan is always for the actor's own jurisdiction; it changes nothing",
    ),
    Rule(
        "POST",
        "/api/v1/resources/requests",
        "/api/v1/resources/requests",
        ACTS_FOR_OWN,
        body=REQUEST,
        why="the requester is always the actor's own jurisdiction",
    ),
    Rule(
        "POST",
        "/api/v1/resources/holds/{hold_id}/approve",
        "/api/v1/resources/holds/{hold}/approve",
        expect("401", "2xx", "403", "2xx", "403", "2xx"),
        fresh="hold",
        why="the depot's owner, or a coordinator, approves",
    ),
    Rule(
        "POST",
        "/api/v1/resources/holds/{hold_id}/release",
        "/api/v1/resources/holds/{hold}/release",
        OWNER_OF_A,
        body={"reason": "walk"},
        fresh="hold",
        why="the owner or the requester releases",
    ),
    # approvals a playbook asks of the regional coordinator: everyone signed in reads; only a
    # coordinator decides
    Rule("GET", "/api/v1/approvals", "/api/v1/approvals?state=requested", SIGNED_IN),
    Rule(
        "GET",
        "/api/v1/approvals/{approval_id}",
        "/api/v1/approvals/{approval}",
        SIGNED_IN,
        fresh="approval",
    ),
    Rule(
        "POST",
        "/api/v1/approvals/{approval_id}/approve",
        "/api/v1/approvals/{approval}/approve",
        expect("401", "403", "403", "2xx", "403", "403"),
        fresh="approval",
        why="only the regional coordinator approves; approving issues the held tasks",
    ),
    Rule(
        "POST",
        "/api/v1/approvals/{approval_id}/reject",
        "/api/v1/approvals/{approval}/reject",
        expect("401", "403", "403", "2xx", "403", "403"),
        body={"reason": "walk"},
        fresh="approval",
        why="only the regional coordinator rejects",
    ),
    # what transports refused: adapters only
    Rule("POST", "/api/v1/audit/refusals", "/api/v1/audit/refusals", ADAPTER_ONLY, body=REFUSAL),
    Rule(
        "POST",
        "/api/v1/audit/unreadable",
        "/api/v1/audit/unreadable",
        ADAPTER_ONLY,
        body=UNREADABLE,
    ),
    # drills: a coordinator or an administrator controls them
    Rule("POST", "/api/v1/drills", "/api/v1/drills", DRILL_CONTROL, body=DRILL),
    Rule("GET", "/api/v1/drills", "/api/v1/drills", DRILL_CONTROL),
    Rule("GET", "/api/v1/drills/{drill}", "/api/v1/drills/{drill}", DRILL_CONTROL, fresh="drill"),
    *(
        Rule(
            "POST",
            f"/api/v1/drills/{{drill}}/{verb}",
            f"/api/v1/drills/{{drill}}/{verb}",
            DRILL_CONTROL,
            fresh="drill",
        )
        for verb in ("pause", "resume", "stop")
    ),
    *(
        Rule(
            "GET",
            f"/api/v1/drills/{{drill}}/{page}",
            f"/api/v1/drills/{{drill}}/{page}",
            DRILL_CONTROL,
            fresh="drill",
        )
        for page in ("report", "report.html")
    ),
]

ADMIN_ONLY = expect("401", "403", "403", "403", "2xx", "403")
RULES += [
    # console users: administrators only
    Rule("GET", "/api/v1/users", "/api/v1/users", ADMIN_ONLY),
    Rule(
        "POST",
        "/api/v1/users",
        "/api/v1/users",
        ADMIN_ONLY,
        body={
            "username": "made.by.{actor}",
            "role": "officer",
            "jurisdiction": "320509",
            "password": "{password}",
        },
    ),
    Rule("POST", "/api/v1/users/{username}/disable", "/api/v1/users/{victim}/disable", ADMIN_ONLY),
]

# Factories of fresh objects: (the walk's world) -> placeholders to override.
Fresh = Callable[[Any], Awaitable[dict[str, str]]]
FRESH: dict[str, Fresh] = {}


def fresh(name: str) -> Callable[[Fresh], Fresh]:
    def register(factory: Fresh) -> Fresh:
        FRESH[name] = factory
        return factory

    return register


@fresh("hold")
async def _new_hold(world: Any) -> dict[str, str]:
    return {"hold": await world.new_hold()}


@fresh("drill")
async def _new_drill(world: Any) -> dict[str, str]:
    """A finished drill (the taipu scenario, as fast as possible), started by the admin."""
    import asyncio

    admin = world.headers["admin"]
    world.client.cookies.clear()
    res = await world.client.post("/api/v1/drills", json=DRILL, headers=admin)
    assert res.status_code == 202, res.text
    drill = str(res.json()["drill"])
    for _ in range(600):
        got = await world.client.get(f"/api/v1/drills/{drill}", headers=admin)
        if got.json()["state"] in ("finished", "failed"):
            break
        await asyncio.sleep(0.05)
    return {"drill": drill}


@fresh("approval")
async def _new_approval(world: Any) -> dict[str, str]:
    """A pending approval: an outbreak Qingpu reported, planned by the hub's own engine
    (``infectious-disease-joint-control`` holds the cross-border passes for a coordinator)."""
    from hub.bus import topics
    from hub.bus.port import Record
    from hub.model.envelope import derived_id, format_time
    from hub.model.events import IncidentReported, make_event
    from hub.model.incident import Incident
    from hub.store import approvals as approval_store
    from tests.factories import cap

    world.approvals = getattr(world, "approvals", 0) + 1
    message = cap(f"walk-outbreak-{world.approvals}", category="Health", circle="31.05,120.95 3")
    message["info"][0]["event"] = "聚集性传染病疫情"
    incident = Incident.model_validate(message)
    now = format_time(world.hub.clock.now_ms())
    payload = IncidentReported(incident=incident, thread=incident.key, version=1, received=now)
    event = make_event(
        "incident.reported",
        payload,
        id=derived_id("incident.reported", incident.key),
        source="/test/authz-walk",
        time=now,
        jurisdiction=incident.sender,
        correlationid=incident.key,
    )
    record = Record(topics.INCIDENTS, 0, 0, incident.key, event.encode(), 0)
    await world.hub.engines[0].handle([record])
    (found,) = await world.hub.db.run(
        lambda tx: approval_store.list_approvals(tx.conn, incident=incident.key)
    )
    return {"approval": found.id}


# EDXL-RM resource requests (issue 6). A line of A: Qingpu asks a depot of Wujiang (A) for
# sandbags; each step belongs to one party (the owner answers). The request rule's factory also
# leaves such a line in the values for the rules after it.
RM_REQUEST = {
    "request": "walk-rm-{actor}",
    "lines": [
        {
            "depot": "qingpu-1",
            "item": "sandbag",
            "quantity": 10,
            "agreement": "qingpu-suzhou-jiaxing-alliance-2021",
            "clause": "8",
            "needed_by": "2026-07-01T12:00:00+08:00",
            "deliver_to": "walk",
        }
    ],
}
RULES += [
    Rule(
        "POST",
        "/api/v1/resources/rm-requests",
        "/api/v1/resources/rm-requests",
        ACTS_FOR_OWN,
        body=RM_REQUEST,
        fresh="rm_line",
        why="the requester is always the actor's own jurisdiction",
    ),
    Rule(
        "GET",
        "/api/v1/resources/rm-requests/{requester}/{request}",
        "/api/v1/resources/rm-requests/{rm_requester}/{rm_request}",
        SIGNED_IN,
    ),
    Rule(
        "GET",
        "/api/v1/resources/rm-requests/{requester}/{request}/edxl-rm",
        "/api/v1/resources/rm-requests/{rm_requester}/{rm_request}/edxl-rm",
        SIGNED_IN,
    ),
    Rule(
        "POST",
        "/api/v1/resources/rm-lines/{line_id}/{step}",
        "/api/v1/resources/rm-lines/{rm_line}/respond",
        OWNER_OF_A,
        body={"answer": "Accept", "quantity": 10},
        fresh="rm_line",
        why="each step belongs to one party of the line: the depot's owner answers",
    ),
]


@fresh("rm_line")
async def _new_rm_line(world: Any) -> dict[str, str]:
    """A line Qingpu asked of a depot of Wujiang, awaiting Wujiang's answer (its own depot, so
    the walk's other holds on ``wujiang-1`` leave it enough stock)."""
    from hub.registry.depots import Depot, get_depot, save_depot
    from hub.registry.exchange import LineAsk, ResourceExchange
    from hub.registry.ledger import Entry, EntryKind

    hub = world.hub
    depot = Depot("wujiang-rm", "320509", "吴江第二仓库", "Wujiang second depot", 31.0, 120.6)
    if await hub.db.run(lambda tx: get_depot(tx.conn, depot.id)) is None:
        await hub.db.run(lambda tx: save_depot(tx.conn, depot))
        await hub.registry.record(
            Entry(depot.id, "sandbag", EntryKind.RECEIPT, 10_000_000, "320509", 0)
        )
    world.rm_lines = getattr(world, "rm_lines", 0) + 1
    request = f"walk-rm-line-{world.rm_lines}"
    ask = LineAsk(depot.id, "sandbag", 1_000_000, "qingpu-suzhou-jiaxing-alliance-2021", "8",
                  "2026-07-01T12:00:00+08:00", "walk")  # fmt: skip
    (line,) = await ResourceExchange(hub.registry).request("310118", request, [ask], "walk-setup")
    assert line.line.state.value == "requested", line
    return {"rm_line": line.line.id, "rm_requester": "310118", "rm_request": request}
