"""The baseline of ``liandong bench console``: a bare server-sent-events fan-out, no hub.

(No ``from __future__ import annotations`` here: FastAPI needs the endpoints' annotations as
objects, and they are local names.)
"""

import asyncio
from typing import Any

from bench.loadgen import LOOPBACK


def serve(port: int) -> None:
    """A bare SSE fan-out: POST /api/v1/incidents becomes a frame on every client's queue.

    Frames are shaped like the hub's (``event: incident.reported``, the incident inside
    ``data``), written the same way (a StreamingResponse per client, uvicorn's defaults).
    """
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import Response, StreamingResponse

    app = FastAPI()
    queues: set[asyncio.Queue[bytes]] = set()

    @app.post("/api/v1/incidents", status_code=202)
    async def intake(request: Request) -> Response:
        body = await request.body()
        frame = b'event: incident.reported\ndata: {"data":{"incident":' + body + b"}}\n\n"
        for q in queues:
            q.put_nowait(frame)
        return Response(b"{}", status_code=202, media_type="application/json")

    async def frames(q: asyncio.Queue[bytes]) -> Any:
        queues.add(q)
        try:
            yield b"event: hello\ndata: {}\n\n"
            while True:
                first = await q.get()
                more = [q.get_nowait() for _ in range(q.qsize())]
                yield first + b"".join(more)
        finally:
            queues.discard(q)

    @app.get("/api/v1/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(frames(asyncio.Queue()), media_type="text/event-stream")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    config = uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning", access_log=False)
    uvicorn.Server(config).run()
