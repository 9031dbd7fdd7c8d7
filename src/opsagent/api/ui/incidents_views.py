"""The incident list (``/incidents``): filters by status, service and age, and the rows alone for the
page's live refresh."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from opsagent.api.runtime import Runtime
from opsagent.api.ui.access import need, page, read_session, runtime_of
from opsagent.store import incidents as incident_store
from opsagent.store.models import IncidentRow, InvestigationRow

router = APIRouter(include_in_schema=False)

SINCE_CHOICES = [("", "any time"), ("1h", "last hour"), ("24h", "last 24 h"), ("7d", "last 7 days")]
_SINCE = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}


@dataclass
class _Filters:
    status: str | None
    service: str | None
    since: str

    @classmethod
    def of(cls, request: Request) -> _Filters:
        q = request.query_params
        status = q.get("status") if q.get("status") in ("open", "resolved") else None
        service = (q.get("service") or "").strip()[:255] or None
        since = q.get("since", "") if q.get("since", "") in _SINCE else ""
        return cls(status, service, since)

    def query(self) -> str:
        return urlencode({k: v for k, v in vars(self).items() if v})


def _incident_rows(
    runtime: Runtime, f: _Filters, limit: int = 100
) -> tuple[list[dict[str, Any]], int, list[str]]:
    since = datetime.now(UTC) - _SINCE[f.since] if f.since else None
    with runtime.store.read() as s:
        rows, total = incident_store.list_incidents(
            s, status=f.status, service=f.service, since=since, limit=limit
        )
        latest: dict[str, InvestigationRow] = {}
        if rows:
            for found in s.scalars(
                select(InvestigationRow)
                .where(InvestigationRow.incident_id.in_([r.id for r in rows]))
                .order_by(InvestigationRow.created_at)
            ):
                latest[found.incident_id] = found
        services = sorted({x for x in s.scalars(select(IncidentRow.service).distinct().limit(500)) if x})
        # The rows are read after the session ends: keep what was loaded (a rollback would expire it).
        s.expunge_all()
    out = []
    for r in rows:
        inv = latest.get(r.id)
        out.append(
            {
                "id": r.id,
                "title": r.title,
                "status": r.status,
                "service": r.service,
                "namespace": r.namespace,
                "created": f"{r.created_at:%Y-%m-%d %H:%M:%S}",
                "top_service": inv.top_service if inv else None,
                "top_fault": inv.top_fault if inv else None,
                "confidence": inv.confidence if inv else None,
                "investigation": inv.status if inv else None,
            }
        )
    return out, total, services


@router.get("/incidents")
async def incidents_page(request: Request) -> Response:
    session = await need(request)
    f = _Filters.of(request)
    rows, total, services = await run_in_threadpool(_incident_rows, runtime_of(request), f)
    return page(
        request,
        "incidents.html",
        {
            "session": session,
            "rows": rows,
            "total": total,
            "services": services,
            "f": f,
            "query": f.query(),
            "since_choices": SINCE_CHOICES,
        },
    )


@router.get("/incidents/rows")
async def incident_rows(request: Request) -> Response:
    """The list's rows alone, for the page's live refresh; 401 (not a redirect) once signed out."""
    session = await run_in_threadpool(read_session, request)
    if session is None:
        return PlainTextResponse("signed out", status_code=401)
    rows, total, _ = await run_in_threadpool(_incident_rows, runtime_of(request), _Filters.of(request))
    response = page(request, "_incident_rows.html", {"rows": rows})
    response.headers["X-Total-Count"] = str(total)
    return response
