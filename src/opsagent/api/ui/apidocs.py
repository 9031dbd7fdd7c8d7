"""The API's description as a page (``/docs``) drawn on the server from the OpenAPI document.

FastAPI's own ``/docs`` loads Swagger UI from a CDN: without internet it is a blank page. This one
needs nothing but the document the app already has.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from opsagent.api.ui.access import page, read_session

router = APIRouter(include_in_schema=False)

_METHODS = ("get", "post", "put", "patch", "delete")


def _schema_text(schema: dict[str, Any], components: dict[str, Any]) -> str:
    """A request body's schema, its ``$ref`` resolved once, as indented JSON."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        schema = components.get(ref.rsplit("/", 1)[-1], schema)
    return json.dumps(schema, indent=2, sort_keys=True)[:4000]


def describe(doc: dict[str, Any]) -> dict[str, Any]:
    """Title, version, description and the operations grouped by tag, in the document's order."""
    components = doc.get("components", {}).get("schemas", {})
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in doc.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            groups.setdefault((op.get("tags") or ["other"])[0], []).append(
                {
                    "id": op.get("operationId", f"{method}-{path}"),
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "params": [
                        {
                            "name": p.get("name"),
                            "where": p.get("in"),
                            "required": p.get("required", False),
                            "description": p.get("description", ""),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": _schema_text(body, components) if isinstance(body, dict) else None,
                    "responses": [
                        (code, r.get("description", "")) for code, r in op.get("responses", {}).items()
                    ],
                }
            )
    info = doc.get("info", {})
    return {
        "title": info.get("title", ""),
        "version": info.get("version", ""),
        "description": info.get("description", ""),
        "groups": list(groups.items()),
    }


@router.get("/docs")
async def api_docs(request: Request) -> Response:
    session = await run_in_threadpool(read_session, request)
    return page(request, "docs.html", {"session": session, **describe(request.app.openapi())})
