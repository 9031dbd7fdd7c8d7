"""Onset detection across a gap in the recording (analysis/onset.py, engine._detect_split)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from opsagent.analysis.onset import after_last_gap
from opsagent.analysis.options import DEFAULT_OPTIONS
from opsagent.analysis.split import incident_split
from opsagent.domain import EvidenceBundle, Incident, MetricSeries, SignalKind, TimeWindow

STEP = 300.0


def test_after_last_gap_finds_where_the_recording_resumes() -> None:
    ts = np.array([0.0, 300.0, 600.0, 1500.0, 1800.0, 2100.0])
    assert after_last_gap(ts, STEP, before=2000.0) == 1500.0
    assert after_last_gap(ts, STEP, before=1200.0) is None  # the gap ends after `before`
    assert after_last_gap(np.array([0.0, 300.0, 600.0]), STEP, before=600.0) is None


def _bundle() -> EvidenceBundle:
    # A normal recording that drifted: it sits lower than the incident's own stretch, whose first
    # bucket is still normal; the fault shows from the third bucket after the gap.
    normal_ts = [i * STEP for i in range(12)]
    issue_ts = [(13 + i) * STEP for i in range(5)]
    metrics = [
        MetricSeries(
            service=f"svc{j}",
            signal="latency_average_seconds",
            kind=SignalKind.LATENCY,
            timestamps=normal_ts + issue_ts,
            values=[0.010 + 0.0005 * (i % 3) for i in range(12)] + [0.05, 0.05, 0.5, 0.5, 0.05],
        )
        for j in range(3)
    ]
    alert = 14 * STEP + 250.0
    incident = Incident(
        id="rec-x",
        title="t",
        window=TimeWindow(start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp(18 * STEP, UTC)),
        alert_time=datetime.fromtimestamp(alert, UTC),
    )
    return EvidenceBundle(incident=incident, metrics=metrics)


def test_onset_is_not_put_at_the_first_point_after_a_gap() -> None:
    bundle = _bundle()
    honest = incident_split(bundle)
    assert honest.detected and honest.incident_start > 13 * STEP
    # Without the rule the step across the join is the strongest change near the alert.
    naive = incident_split(bundle, DEFAULT_OPTIONS.with_(gap_aware_onset=False))
    assert naive.incident_start <= 13 * STEP


def test_fault_shape_breaks_a_cpu_memory_tie() -> None:
    from opsagent.analysis.faults import KindEvidence, classify
    from opsagent.domain import FaultType

    # a CPU stressor: CPU at its plateau in the first minute, memory (60 sd) still growing
    contention = [
        KindEvidence(FaultType.CPU, 70.0, 100.0, 1.0),
        KindEvidence(FaultType.MEMORY, 60.0, 100.0, 0.2),
    ]
    assert classify(contention, shape=True) is FaultType.CPU
    assert classify(contention, shape=False) is FaultType.MEMORY  # the magnitude rule alone
    # a memory stressor that saturates a core: both shift at once, the magnitude rule decides
    stressor = [KindEvidence(FaultType.CPU, 250.0, 0.0, 1.0), KindEvidence(FaultType.MEMORY, 41.0, 0.0, 0.7)]
    assert classify(stressor, shape=True) is FaultType.MEMORY


def test_a_barely_moved_series_has_no_shape_to_read() -> None:
    from opsagent.analysis.faults import KindEvidence, classify
    from opsagent.domain import FaultType

    # a CPU hog: CPU 13 sd and still climbing after its first minute; memory moved 5 sd "at once",
    # which for a move that small is noise: the magnitude rule decides
    hog = [KindEvidence(FaultType.CPU, 13.5, 0.0, 0.33), KindEvidence(FaultType.MEMORY, 5.0, 0.0, 1.0)]
    assert classify(hog, shape=True) is FaultType.CPU
    # the same shapes with both moves clear: the shapes decide
    clear = [KindEvidence(FaultType.CPU, 13.5, 0.0, 0.33), KindEvidence(FaultType.MEMORY, 15.0, 0.0, 1.0)]
    assert classify(clear, shape=True) is FaultType.MEMORY


def test_cpu_and_memory_seconds_apart_moved_at_once() -> None:
    from opsagent.analysis.explain import EARLY_SECONDS
    from opsagent.analysis.faults import KindEvidence, classify
    from opsagent.domain import FaultType

    # a memory stressor sampled every second: it burns its core at once and has allocated 5 s later;
    # CPU first by 5 s is not CPU the cause, the magnitude rule decides within the minute
    stressor = [
        KindEvidence(FaultType.CPU, 1288.0, 100.0, 1.0),
        KindEvidence(FaultType.MEMORY, 30.8, 105.0, 0.6),
    ]
    assert classify(stressor, shape=True) is FaultType.CPU
    assert classify(stressor, shape=True, resource_tie_seconds=EARLY_SECONDS) is FaultType.MEMORY
    # a leak: memory growing, the CPU of its garbage collection a minute later and growing too; a
    # move still under way after its first minute is no step, and the order stands
    leak = [KindEvidence(FaultType.MEMORY, 10.6, 100.0, 0.36), KindEvidence(FaultType.CPU, 21.6, 160.0, 0.34)]
    assert classify(leak, shape=True, resource_tie_seconds=EARLY_SECONDS) is FaultType.MEMORY
    seconds_apart = [
        KindEvidence(FaultType.MEMORY, 10.6, 100.0, 0.36),
        KindEvidence(FaultType.CPU, 21.6, 105.0, 0.34),
    ]
    assert classify(seconds_apart, shape=True, resource_tie_seconds=EARLY_SECONDS) is FaultType.MEMORY
    # errors seconds after a CPU hog are its consequence, not a class tied with it
    hog = [KindEvidence(FaultType.CPU, 40.0, 100.0, 1.0), KindEvidence(FaultType.ERRORS_CODE, 90.0, 104.0)]
    assert classify(hog, shape=True, resource_tie_seconds=EARLY_SECONDS) is FaultType.CPU
