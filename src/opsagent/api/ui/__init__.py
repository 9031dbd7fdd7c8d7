"""The web console: server-rendered pages at ``/`` next to the API, assets served from the package.

``install(app)`` adds the pages, the static files and the console's error pages. Nothing is loaded
from elsewhere: the stylesheet and the one script are in ``static/``, the charts are inline SVG.

Pages are rendered on the server from the same store and report functions the API uses; the one
script (``static/console.js``) only refreshes the incident list, waits for a running investigation
and streams chat answers. One module per page: ``signin_views``, ``incidents_views`` (the list),
``incident_views`` (one incident), ``evals_views``, ``apidocs``; ``access`` is who may see them.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from opsagent.api.ui import apidocs, evals_views, incident_views, incidents_views, signin_views
from opsagent.api.ui.access import install_errors

STATIC = Path(__file__).resolve().parent / "static"


def install(app: FastAPI) -> None:
    # The list's own paths (/incidents/rows) before one incident's (/incidents/{id}).
    for pages in (signin_views, incidents_views, incident_views, evals_views, apidocs):
        app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_errors(app)


__all__ = ["install"]
