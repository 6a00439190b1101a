"""The FastAPI application factory; the hub's lifespan is the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hub.console import problems
from hub.console.auth import AuthSettings, TokenCache
from hub.console.intake_http import FrontDoor
from hub.console.live import stop_live
from hub.console.routes import approvals as approval_routes
from hub.console.routes import (
    audit,
    drills,
    explain,
    health,
    holds_read,
    incidents,
    overview,
    pages,
    playbooks_read,
    region_map,
    resource_messages,
    resources,
    stream,
    tasks,
)
from hub.console.routes import session as session_routes
from hub.console.routes import users as user_routes
from hub.runtime import Hub
from hub.settings import Settings, from_env


def create_app(settings: Settings | None = None, hub: Hub | None = None) -> FrontDoor:
    """Build the app. With ``hub`` given the caller owns its lifecycle; otherwise the app does."""
    owned = hub is None
    the_hub = hub if hub is not None else Hub(settings or from_env())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owned:
            await the_hub.start()
        try:
            yield
        finally:
            await stop_live(app.state)
            if owned:
                await the_hub.stop()

    app = FastAPI(title="Liandong 联动", version="0.1.0", lifespan=lifespan)
    app.state.hub = the_hub
    app.state.tokens = TokenCache()
    app.state.auth = AuthSettings.from_env()
    problems.install(app)
    for module in (incidents, tasks, resources, audit, health, overview, explain):
        app.include_router(module.router)
    app.include_router(resource_messages.router)
    app.include_router(session_routes.router)
    app.include_router(user_routes.router)
    app.include_router(approval_routes.router)
    for module in (pages, stream, region_map, playbooks_read, holds_read, drills):
        app.include_router(module.router)
    return FrontDoor(app)


def create_app_from_env() -> FrontDoor:
    """Entry for ``uvicorn --factory hub.console.app:create_app_from_env``."""
    return create_app(from_env())
