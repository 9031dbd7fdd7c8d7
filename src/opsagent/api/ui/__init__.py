"""The web console: server-rendered pages at ``/`` next to the API, assets served from the package.

``install(app)`` adds the pages, the static files and the console's error pages. Nothing is loaded
from elsewhere: the stylesheet and the one script are in ``static/``, the charts are inline SVG.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from opsagent.api.ui.views import install_errors, router

STATIC = Path(__file__).resolve().parent / "static"


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_errors(app)


__all__ = ["install"]
