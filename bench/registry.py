"""``liandong bench registry``: stock holds per second through the real ``Registry``, on SQLite
and on PostgreSQL, against a bare guarded UPDATE on the same database in the same run.

For each of several runs (one with ``quick``), on a fresh database of each kind:

1. **setup**: 16 depots in 16 Shanghai districts, sandbags received at each; one agreement binds
   the whole region (floor 0, auto-commit 0: every hold awaits approval, as large requests do;
   caps at all the lendable stock). Each depot holds 5 % less than will be asked of it.
2. **holds**: 16 concurrent clients, each a district of another city, each asks ``requests``
   times for 1 sandbag, cycling over the depots, through ``Registry.request``: the requests
   waiting at that moment are decided together in one transaction (``hold_batch``: the policy
   per request, each balance and daily total written once as a compare-and-set, the ledger
   entries, the hold rows, the events) through ``db.run`` (SQLite: the group-committing writer
   with the embedded log as the emitter, synchronous FULL as the hub runs by default;
   PostgreSQL: READ COMMITTED with the outbox, statements sent in pipelines). A client waits
   for its answer before it asks again, so a batch holds at most 16 requests.
   ``holds_per_s`` = holds granted / the time from the first request to the last answer.
3. **oversell check**: every depot ends with all its stock held and nothing more; ``oversold``
   counts units held beyond what was on hand, grants the balances do not show, and balances the
   ledger does not reproduce (``ledger.derive``). It must be 0.
4. **baseline**: the same clients, the same number of jobs and the same depots, each job one
   bare guarded UPDATE (``held = held + 1 WHERE on_hand - held >= 1``) through ``db.run``: the
   floor a reservation costs on that database.

Figures are medians over the runs; ``runs`` keeps each run's figures. PostgreSQL is
``LIANDONG_BENCH_POSTGRES`` or ``LIANDONG_TEST_POSTGRES`` (an admin URL) or the machine's server
at 127.0.0.1:5432; if none answers, a throw-away cluster is started with the tests' helper and
stopped at the end. Each run gets a fresh database, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench import kafka_infra
from bench.loadgen import median_of
from hub.bus.embedded import EmbeddedBus
from hub.clock import SystemClock
from hub.model.region import SafetyFloor, Sharing
from hub.region import load_region
from hub.registry import ledger
from hub.registry.depots import Depot, save_depot
from hub.registry.ledger import Entry, EntryKind
from hub.registry.service import Registry, StockRequest
from hub.store.db import Database, Tx
from hub.store.outbox import Emitter, Outbox
from hub.store.postgres import PostgresDatabase

CLIENTS = 16
DEPOTS = 16
ITEM = "sandbag"
AGREEMENT = "bench-region-sharing"


@dataclass(frozen=True)
class Plan:
    runs: int
    requests: int  # per client


PLANS = {False: Plan(runs=3, requests=500), True: Plan(runs=1, requests=40)}


@dataclass(frozen=True)
class Figures:
    holds_per_s: float
    baseline_per_s: float
    granted: int
    refused: int
    oversold: int


def _setting() -> tuple[Any, list[Depot], list[str]]:
    region = load_region()
    shanghai = [d.code for d in region.districts() if d.code.startswith("31")]
    others = [d.code for d in region.districts() if not d.code.startswith("31")]
    depots = [
        Depot(f"bench-{code}", code, f"基准仓库{n}", f"Bench depot {n}", 31.2, 121.4)
        for n, code in enumerate(shanghai[:DEPOTS])
    ]
    base = region.agreement("yrd-demo-zone-emergency-linkage")
    cities = tuple(sorted({j.code for j in region.jurisdictions.values() if j.level == "city"}))
    sharing = Sharing(
        safety_floor=SafetyFloor(policy="keep_fraction", fraction=0.0),
        auto_commit_threshold=0.0,
        per_request_cap=1.0,
        per_day_cap=1.0,
    )
    agreement = base.model_copy(update={"id": AGREEMENT, "parties": cities, "sharing": sharing})
    return agreement, depots, others[:CLIENTS]


async def _clients(work: Callable[[int, int], Awaitable[bool]], requests: int) -> tuple[int, float]:
    """``CLIENTS`` concurrent loops of ``requests`` calls each; (successes, seconds)."""
    done = [0] * CLIENTS

    async def loop(c: int) -> None:
        for i in range(requests):
            done[c] += await work(c, i)

    start = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in range(CLIENTS)))
    return sum(done), time.perf_counter() - start


async def _measure(db: Any, emitter: Emitter, plan: Plan, run_no: int) -> Figures:
    agreement, depots, partners = _setting()
    clock = SystemClock()
    reg = Registry(db, emitter, clock, load_region(), agreements=[agreement])
    asked = CLIENTS * plan.requests // DEPOTS  # per depot: client c's i-th ask goes to (c+i) % 16
    stock = asked - asked // 20
    now = clock.now_ms()
    for depot in depots:
        await db.run(lambda tx, d=depot: save_depot(tx.conn, d))
        await reg.record(Entry(depot.id, ITEM, EntryKind.RECEIPT, stock, "bench", now))

    async def hold(c: int, i: int) -> bool:
        depot = depots[(c + i) % DEPOTS]
        ask = StockRequest(
            f"bench-{run_no}-{c}-{i}", depot.id, ITEM, 1, partners[c], AGREEMENT, f"c{c}"
        )
        return (await reg.request(ask)).hold is not None

    granted, seconds = await _clients(hold, plan.requests)
    live = await db.run(lambda tx: ledger.balances(tx.conn, item=ITEM))
    derived = await db.run(lambda tx: ledger.derive(tx.conn))
    oversold = sum(max(0, b.held - b.on_hand) for b in live)
    oversold += abs(granted - sum(b.held for b in live))
    oversold += sum(abs(a.held - b.held) + abs(a.on_hand - b.on_hand) for a, b in zip(
        live, derived, strict=False))  # fmt: skip
    oversold += abs(len(live) - len(derived))

    await db.run(lambda tx: tx.conn.execute("UPDATE balances SET held = 0"))

    async def bare(c: int, i: int) -> bool:
        depot = depots[(c + i) % DEPOTS].id

        def job(tx: Tx) -> bool:
            cur = tx.conn.execute(
                "UPDATE balances SET held = held + 1 WHERE depot = ? AND item = ? "
                "AND on_hand - held >= 1",
                (depot, ITEM),
            )
            return bool(cur.rowcount == 1)

        return bool(await db.run(job))

    reserved, base_seconds = await _clients(bare, plan.requests)
    total = CLIENTS * plan.requests
    return Figures(
        holds_per_s=round(granted / seconds, 1),
        baseline_per_s=round(reserved / base_seconds, 1),
        granted=granted,
        refused=total - granted,
        oversold=oversold,
    )


async def _sqlite(plan: Plan, run_no: int) -> Figures:
    folder = Path(tempfile.mkdtemp(prefix="liandong-bench-registry-"))
    db = Database(folder / "liandong.db", "FULL")
    await db.start()
    try:
        return await _measure(db, EmbeddedBus(db, SystemClock()), plan, run_no)
    finally:
        await db.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def _postgres(url: str, plan: Plan, run_no: int) -> Figures:
    db = PostgresDatabase(url)  # the hub's own default: its writer threads group-commit
    await db.start()
    try:
        return await _measure(db, Outbox(SystemClock()), plan, run_no)
    finally:
        await db.stop()


@contextlib.contextmanager
def postgres_server() -> Iterator[None]:
    """``LIANDONG_BENCH_POSTGRES``, ``LIANDONG_TEST_POSTGRES`` or the machine's PostgreSQL;
    else a throw-away cluster started with the tests' helper, stopped by this context."""
    given = os.environ.get("LIANDONG_TEST_POSTGRES")
    if given and not os.environ.get(kafka_infra.ADMIN_ENV):
        os.environ[kafka_infra.ADMIN_ENV] = given
    try:
        with psycopg.connect(kafka_infra.admin_url(), connect_timeout=3):
            pass
        yield
        return
    except psycopg.Error:
        pass
    from tests.brokers.postgres import _bin_dir, _PrivateCluster

    bin_dir = _bin_dir()
    if bin_dir is None:
        raise RuntimeError("no PostgreSQL to benchmark on: install postgresql or set "
                           f"{kafka_infra.ADMIN_ENV}")  # fmt: skip
    cluster = _PrivateCluster(bin_dir)
    url = cluster.start()
    previous = os.environ.get(kafka_infra.ADMIN_ENV)
    os.environ[kafka_infra.ADMIN_ENV] = url
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(kafka_infra.ADMIN_ENV, None)
        else:
            os.environ[kafka_infra.ADMIN_ENV] = previous
        cluster.stop()


def run(quick: bool = False) -> dict[str, Any]:
    plan = PLANS[quick]
    runs: list[dict[str, Any]] = []
    with postgres_server():
        for n in range(plan.runs):
            lite = asyncio.run(_sqlite(plan, n))
            with kafka_infra.fresh_database("liandong_bench_registry") as url:
                pg = asyncio.run(_postgres(url, plan, n))
            runs.append({"sqlite": lite.__dict__, "postgres": pg.__dict__})
    return {
        "benchmark": "registry",
        "sqlite_holds_per_s": median_of([r["sqlite"]["holds_per_s"] for r in runs]),
        "postgres_holds_per_s": median_of([r["postgres"]["holds_per_s"] for r in runs]),
        "sqlite_baseline_per_s": median_of([r["sqlite"]["baseline_per_s"] for r in runs]),
        "postgres_baseline_per_s": median_of([r["postgres"]["baseline_per_s"] for r in runs]),
        "oversold": sum(r[db]["oversold"] for r in runs for db in ("sqlite", "postgres")),
        "clients": CLIENTS,
        "depots": DEPOTS,
        "requests": CLIENTS * plan.requests,
        "runs": runs,
    }
