"""The evaluation reports (``/evals``): the ``opsagent eval --json`` files of the reports folder, with
AC@1 and AC@3, and one report as its self-contained HTML page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from opsagent.api.ui.access import ConsoleRefusedError, need, page, runtime_of

router = APIRouter(include_in_schema=False)

_REPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.json$")


def _eval_rows(folder: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)[:200]:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
            continue  # not an `opsagent eval` report
        ranks = [c.get("rank_of_truth") for c in doc["cases"] if isinstance(c, dict)]
        datasets = doc.get("datasets")
        out.append(
            {
                "name": path.name,
                "when": str(doc.get("generated_at") or "")[:16].replace("T", " "),
                "cases": len(ranks),
                "datasets": ", ".join(datasets) if isinstance(datasets, dict) else "",
                "reasoner": str(doc.get("reasoner") or ""),
                "ac1": _share(ranks, 1),
                "ac3": _share(ranks, 3),
            }
        )
    return out


def _share(ranks: list[Any], k: int) -> str:
    """AC@k over the report's cases: the share whose true cause ranked k-th or better."""
    if not ranks:
        return ""
    hits = sum(1 for r in ranks if isinstance(r, int) and r <= k)
    return f"{hits / len(ranks):.2f}"


@router.get("/evals")
async def evals_page(request: Request) -> Response:
    session = await need(request)
    folder = runtime_of(request).settings.console.reports_dir
    rows = await run_in_threadpool(_eval_rows, folder) if folder.is_dir() else []
    return page(request, "evals.html", {"session": session, "reports": rows, "folder": str(folder)})


@router.get("/evals/{name}")
async def eval_report(request: Request, name: str) -> Response:
    await need(request)
    folder = runtime_of(request).settings.console.reports_dir
    if not _REPORT_NAME.match(name) or not (folder / name).is_file():
        raise ConsoleRefusedError(f"no evaluation report named {name[:130]!r}", back="/evals")
    from opsagent.evals.html import render_html

    try:
        doc = json.loads((folder / name).read_text())
        html = await run_in_threadpool(render_html, doc)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConsoleRefusedError(
            f"{name} is not a readable evaluation report ({type(exc).__name__})", "/evals"
        ) from exc
    response = HTMLResponse(html)
    # The report is one self-contained page with its own inline styles and no script.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    return response
