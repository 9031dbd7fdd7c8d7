"""Liveness, readiness and Prometheus metrics (outside /v1: probes and scrapers expect fixed paths)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from opsagent.api.deps import RuntimeDep
from opsagent.api.schemas import Health
from opsagent.pipeline import evidence_sources

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Database, queue and evidence sources are usable",
    responses={503: {"model": Health, "description": "a dependency is down"}},
)
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    db_ok = await run_in_threadpool(runtime.store.ping)
    queue_ok = await run_in_threadpool(runtime.queue.healthy)
    checks = {
        "database": "ok" if db_ok else "unavailable",
        "queue": "ok" if queue_ok else "unavailable",
        "sources": ", ".join(s.name for s in runtime.services.sources) or "none",
        # Named, so "ready" never hides that investigations would see nothing but the alert.
        "evidence": ", ".join(evidence_sources(runtime.services.sources))
        or "none configured: investigations read only the alert and the runbooks (OPSAGENT_PROMETHEUS__URL, "
        "OPSAGENT_LOKI__URL, OPSAGENT_LOGS_DIR)",
    }
    ok = db_ok and queue_ok
    body = Health(status="ok" if ok else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    data = await run_in_threadpool(generate_latest, runtime.metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
