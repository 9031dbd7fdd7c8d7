"""Running the real pipeline on a demo incident with the LLM reasoner pointed at the fake server."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from opsagent.config import LLMSettings, Settings
from opsagent.domain import AutonomyLevel, Investigation, LogRecord, RecordedIncident
from opsagent.evals.native import load_native
from opsagent.evals.replay import replay_sources
from opsagent.factory import build_reasoner, build_services
from opsagent.pipeline import Services, investigate

ROOT = Path(__file__).resolve().parents[2]
DEMOS = ROOT / "examples" / "incidents"


def make_settings(
    tmp_path: Path,
    base_url: str | None,
    *,
    level: AutonomyLevel = AutonomyLevel.L2,
    **llm: float | int,
) -> Settings:
    """Settings for a test: hashing embeddings, the repo's runbooks and prompts, the fake endpoint."""
    fields: dict[str, float | int] = {"timeout_seconds": 5.0, "max_retries": 2, **llm}
    return Settings(
        data_dir=tmp_path / "data",
        runbooks_dir=ROOT / "runbooks",
        prompts_dir=ROOT / "prompts",
        embedding="hashing",
        autonomy_level=level,
        llm=LLMSettings(base_url=base_url, model="fake-model" if base_url else None, **fields),  # type: ignore[arg-type]
    )


def recording(name: str, extra_logs: list[LogRecord] | None = None) -> RecordedIncident:
    rec = load_native(DEMOS / name)
    if extra_logs:
        rec = rec.model_copy(update={"logs": sorted([*rec.logs, *extra_logs], key=lambda r: r.timestamp)})
    return rec


def services_for(rec: RecordedIncident, settings: Settings, reasoner: str | None = "llm") -> Services:
    return build_services(settings, replay_sources(rec), reasoner=build_reasoner(settings, reasoner))


def run(name: str, settings: Settings, extra_logs: list[LogRecord] | None = None) -> Investigation:
    rec = recording(name, extra_logs)
    return investigate(rec.incident, services_for(rec, settings))


def demo_names() -> list[str]:
    return sorted(p.name for p in Path(DEMOS).iterdir() if (p / "incident.yaml").is_file())


@cache
def engine_evidence_id(name: str, service: str, kind: str = "log") -> str:
    """The id of the engine's first ``kind`` evidence item for ``service`` on a demo incident.

    Scripted answers cite it instead of a literal: the engine names its items (``log:payment:0``,
    ``pattern:payment:log:…``) and may rename them; the tests are about the LLM path, not the names.
    """
    rec = recording(name)
    with tempfile.TemporaryDirectory() as tmp:
        inv = investigate(rec.incident, services_for(rec, make_settings(Path(tmp), None), reasoner="offline"))
    suspect = next(s for s in inv.suspects if s.service == service)
    return next(e.id for e in suspect.evidence if e.kind == kind)
