"""The HTTP service: ``create_app(settings)``. Only this package imports FastAPI."""

from opsagent.api.app import create_app

__all__ = ["create_app"]
