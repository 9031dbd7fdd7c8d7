"""A runbook: what to check and what to do for a kind of alert, and the actions it declares."""

from __future__ import annotations

from pydantic import BaseModel, Field

from opsagent.domain.actions import ActionSpec


class RunbookQuery(BaseModel):
    """A PromQL query a runbook asks for during diagnosis; placeholders {service}, {namespace}, {pod}, {job}."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    promql: str = Field(min_length=1)


class Runbook(BaseModel):
    id: str
    title: str
    alerts: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    signals: list[str] = Field(default_factory=list)
    fault_types: list[str] = Field(default_factory=list)
    actions: list[ActionSpec] = Field(default_factory=list)
    queries: list[RunbookQuery] = Field(default_factory=list)
    symptoms: list[str] = Field(default_factory=list)
    diagnosis: list[str] = Field(default_factory=list)
    remediation: list[str] = Field(default_factory=list)
    body: str = ""
    path: str = ""
    content_hash: str = ""
