"""Live use of reference periods: ``reference_offset_hours`` in the pipeline, and
``opsagent investigate --reference START/END``."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from opsagent.autonomy.catalog import ActionCatalog
from opsagent.cli import app
from opsagent.commands.investigate import investigate_recorded, parse_reference
from opsagent.config import Settings
from opsagent.domain import Incident, RecordedIncident, TimeWindow
from opsagent.errors import InputError
from opsagent.evals.native import load_native
from opsagent.evals.replay import replay_sources
from opsagent.evidence.base import Collected, EvidenceSource
from opsagent.pipeline import Services, investigate

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "incidents" / "db-pool-exhaustion"


@pytest.fixture
def env(tmp_path, monkeypatch):
    values = {
        "OPSAGENT_DATA_DIR": str(tmp_path / "data"),
        "OPSAGENT_RUNBOOKS_DIR": str(REPO / "runbooks"),
        "OPSAGENT_EMBEDDING": "hashing",
        "OPSAGENT_CONFIG_FILE": str(tmp_path / "absent.yaml"),
    }
    # Settings() built by the tests themselves must not read an opsagent.yaml or the caller's env.
    monkeypatch.setenv("OPSAGENT_CONFIG_FILE", values["OPSAGENT_CONFIG_FILE"])
    monkeypatch.delenv("OPSAGENT_REFERENCE_OFFSET_HOURS", raising=False)
    return values


# --- the setting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -24, 24 * 366 + 1, "yesterday"])
def test_reference_offset_must_be_positive_hours(env, bad):
    with pytest.raises(ValidationError, match="reference_offset_hours"):
        Settings(reference_offset_hours=bad)


def test_reference_offset_from_the_environment(env, monkeypatch):
    assert Settings().reference_offset_hours is None
    monkeypatch.setenv("OPSAGENT_REFERENCE_OFFSET_HOURS", "168")
    assert Settings().reference_offset_hours == 168.0


# --- the pipeline --------------------------------------------------------------------------------


class Noting:
    """A replayed source (our EvidenceSource seam) that notes the windows it is asked for."""

    def __init__(self, inner: EvidenceSource) -> None:
        self.inner = inner
        self.name = inner.name
        self.windows: list[TimeWindow] = []
        self._lock = threading.Lock()

    def collect(self, incident: Incident) -> Collected:
        with self._lock:
            self.windows.append(incident.window)
        return self.inner.collect(incident)


def _run(incident: Incident, recording: RecordedIncident, offset: float | None) -> tuple:
    sources = [Noting(s) for s in replay_sources(recording)]
    settings = Settings(reference_offset_hours=offset)
    services = Services(settings=settings, sources=list(sources), catalog=ActionCatalog([]))
    inv = investigate(incident, services)
    return inv, {s.name: sorted(s.windows, key=lambda w: w.start) for s in sources}


def test_offset_sets_the_reference_to_the_same_hours_earlier(env):
    rec = load_native(DEMO)
    window = rec.incident.window
    inv, asked = _run(rec.incident, rec, 24)
    yesterday = TimeWindow(start=window.start - timedelta(hours=24), end=window.end - timedelta(hours=24))
    assert inv.incident.reference == yesterday
    assert asked["logs"] == asked["traces"] == [yesterday, window]
    assert asked["metrics"] == asked["topology"] == [window]
    assert not [g for g in inv.gaps if "reference" in g.source]
    assert inv.findings.root_causes, "the investigation ran as usual"


def test_an_incidents_own_reference_wins_over_the_offset(env):
    rec = load_native(DEMO)
    own = TimeWindow(start=rec.incident.window.start - timedelta(days=7), end=rec.incident.window.start)
    inv, asked = _run(rec.incident.model_copy(update={"reference": own}), rec, 24)
    assert inv.incident.reference == own
    assert asked["logs"] == [own, rec.incident.window]


def test_without_an_offset_nothing_changes(env):
    rec = load_native(DEMO)
    inv, asked = _run(rec.incident, rec, None)
    assert inv.incident.reference is None
    assert asked["logs"] == asked["traces"] == [rec.incident.window]


def test_an_offset_reaching_into_the_incident_is_not_used_and_says_so(env):
    rec = load_native(DEMO)
    # The demo's window ends ~25 minutes after its alert: 0.25 h back still holds the alert.
    inv, asked = _run(rec.incident, rec, 0.25)
    assert inv.incident.reference is None
    assert asked["logs"] == [rec.incident.window]
    gap = next(g for g in inv.gaps if g.source == "reference period")
    assert "not used" in gap.reason and "0.25 h" in gap.reason


# --- opsagent investigate --reference ------------------------------------------------------------


def run(args, env):
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.stdout, result.stderr


def test_parse_reference():
    window = parse_reference("2026-11-19T08:00:00Z/2026-11-19T12:00:00+02:00")
    assert window.start == datetime(2026, 11, 19, 8, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
    assert window.start.utcoffset() == timedelta(0) == window.end.utcoffset()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("2026-11-19T08:00:00Z", "expected START/END"),
        ("2026-11-19T08:00:00Z/2026-11-19T10:00:00Z/2026-11-19T12:00:00Z", "expected START/END"),
        ("2026-11-19/2026-11-20", "'2026-11-19' is not an RFC 3339 timestamp"),
        ("2026-11-19T08:00:00/2026-11-19T10:00:00", "is not an RFC 3339 timestamp"),  # no offset
        ("1763539200/1763546400", "'1763539200' is not an RFC 3339 timestamp"),
        ("2026-11-19T08:00:00Z/2026-13-19T10:00:00Z", "'2026-13-19T10:00:00Z' is not an RFC 3339"),
        ("0001-01-01T00:00:00Z/2026-11-19T10:00:00Z", "'0001-01-01T00:00:00Z' is outside 1970-01-01"),
        ("2026-11-19T10:00:00Z/2026-11-19T08:00:00Z", "the end must be after the start"),
        ("2026-11-19T10:00:00Z/2026-11-19T12:00:00+02:00", "the end must be after the start"),
    ],
)
def test_bad_reference_is_one_clear_line(env, value, says):
    with pytest.raises(InputError, match="--reference"):
        parse_reference(value)
    code, out, err = run(["investigate", str(DEMO), "--reference", value], env)
    assert code == 2
    assert err.startswith("error: --reference") and says in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in out + err


def test_reference_option_is_used_for_the_investigation(env):
    value = "2026-11-19T08:00:00Z/2026-11-19T10:00:00Z"
    code, out, err = run(["investigate", str(DEMO), "--format", "json", "--reference", value], env)
    assert code == 0, err
    assert json.loads(out)["root_causes"]
    settings = Settings(
        data_dir=Path(env["OPSAGENT_DATA_DIR"]), runbooks_dir=REPO / "runbooks", embedding="hashing"
    )
    reference = parse_reference(value)
    inv = investigate_recorded(DEMO, settings, reference=reference)
    assert inv.incident.reference == reference
    assert inv.findings.root_causes


def test_a_bad_offset_setting_is_one_clear_line(env):
    code, out, err = run(["investigate", str(DEMO)], {**env, "OPSAGENT_REFERENCE_OFFSET_HOURS": "0"})
    assert code != 0
    assert "OPSAGENT_REFERENCE_OFFSET_HOURS" in err and "greater than 0" in err
    assert "Traceback" not in out + err
