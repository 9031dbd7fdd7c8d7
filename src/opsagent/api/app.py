"""``create_app(settings)``: the FastAPI application; the lifespan builds and closes the services."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from opsagent import __version__
from opsagent.api import http_errors
from opsagent.api.limits import BodyLimitMiddleware
from opsagent.api.routes import actions, alerts, chat, health, incidents, users
from opsagent.api.runtime import Runtime
from opsagent.api.ui import install as install_console
from opsagent.config import Settings
from opsagent.evidence.base import EvidenceSource
from opsagent.factory import start_expiry_sweeper

# Routers under /v1. Append a router here to add routes (e.g. actions and approvals).
V1_ROUTERS: list[APIRouter] = [
    alerts.router,
    incidents.router,
    chat.router,
    users.router,
    actions.router,
]


def create_app(settings: Settings, *, sources: list[EvidenceSource] | None = None) -> FastAPI:
    """The app for ``settings``. ``sources`` replaces the live evidence sources (recordings, tests)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, sources=sources)
        app.state.runtime = runtime
        app.state.metrics = runtime.metrics
        # Pending approvals past their expiry are marked expired even when no one lists them.
        sweeper = start_expiry_sweeper(settings, runtime.store)
        # The services just built (runbook index, embedding model, SQLAlchemy, pydantic schemas) are
        # ~200k container objects that live as long as the process. Every full (generation 2) garbage
        # collection walked all of them with the GIL held: 140-470 ms stalls of every thread, which
        # were the p99 of the alert storm. Frozen, they are skipped by the collector; what the
        # requests and investigations allocate later is still collected as before.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            # Hand them back to the collector (tests build and drop many apps in one process).
            gc.unfreeze()
            sweeper.stop()
            runtime.close()

    app = FastAPI(
        title="opsagent",
        version=__version__,
        description=(
            "Incident analysis for on-call engineers: Alertmanager webhook, incidents, reports and chat. "
            "Authenticate with `Authorization: Bearer <token>`."
        ),
        lifespan=lifespan,
        # Swagger UI and ReDoc load from a CDN (a blank page offline): the console serves /docs itself.
        docs_url=None,
        redoc_url=None,
    )
    http_errors.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    for router in V1_ROUTERS:
        app.include_router(router, prefix="/v1")
    install_console(app)
    return app
