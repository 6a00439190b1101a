"""``GET /api/v1/region/map``: the jurisdictions' boundaries as GeoJSON, for the console's map.

Boundaries are simplified (~120 m) WGS-84 polygons of the 71 districts; each feature names its
code, zh/en names and parent city. ``jurisdictions`` names every city and district with a point
inside it for its label (``centroid``, lat/lon). Built once per process; the browser caches it
for an hour (the region data changes only with a release).
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from hub.console.auth import CurrentActor, CurrentHub

router = APIRouter(prefix="/api/v1/region", tags=["console"])


@router.get("/map")
async def region_map(request: Request, hub: CurrentHub, actor: CurrentActor) -> Response:
    cached: bytes | None = getattr(request.app.state, "region_map", None)
    if cached is None:
        collection = hub.region.to_geojson()
        collection["jurisdictions"] = {
            code: {
                "name_zh": j.name_zh,
                "name_en": j.name_en,
                "level": j.level,
                "parent": j.parent,
                "centroid": list(j.centroid),
            }
            for code, j in hub.region.jurisdictions.items()
        }
        cached = orjson.dumps(collection)
        request.app.state.region_map = cached
    return Response(
        cached,
        media_type="application/geo+json",
        headers={"Cache-Control": "private, max-age=3600"},
    )
