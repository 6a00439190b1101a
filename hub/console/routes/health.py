"""``/healthz`` and Prometheus ``/metrics``."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from hub.console.auth import CurrentHub

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz(hub: CurrentHub) -> Response:
    """200 when the database answers; 503 otherwise (the hub cannot accept incidents)."""
    try:
        await hub.db.run(lambda tx: tx.conn.execute("SELECT 1").fetchone())
    except Exception as exc:  # any failure means "not healthy", reported as such
        return Response(
            orjson.dumps({"status": "down", "reason": str(exc)}), 503, media_type="application/json"
        )
    return Response(orjson.dumps({"status": "ok"}), media_type="application/json")


@router.get("/metrics")
async def metrics(hub: CurrentHub) -> Response:
    return Response(generate_latest(hub.metrics.registry), media_type=CONTENT_TYPE_LATEST)
