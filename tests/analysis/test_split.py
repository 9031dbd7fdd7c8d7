"""Normal period versus incident from the data: the alert only bounds where the onset can be
(``analysis/split.py``, ``analysis/event_onset.py``), and every reader shares the one split."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from opsagent.analysis.event_onset import MIN_ONSET_Z, event_onset
from opsagent.analysis.events import MIN_Z
from opsagent.analysis.log_summary import summarize_logs
from opsagent.analysis.options import DEFAULT_OPTIONS
from opsagent.analysis.split import (
    EVENT_FORWARD_SECONDS,
    EVENT_LEAD_SECONDS,
    EVENT_MARGIN_SECONDS,
    _down_onset,
    _ramp_start,
    incident_split,
    normal_end,
)
from opsagent.domain import EvidenceBundle, Incident, LogRecord, MetricSeries, SignalKind, TimeWindow

STEP = 10.0
N = 60  # ten minutes of 10-s samples
FAULT = 30.0 * STEP  # the fault starts five minutes in


def _wiggle(i: int, level: float, amplitude: float) -> float:
    return level + amplitude * ((i * 7) % 5 - 2)


def _metrics() -> list[MetricSeries]:
    ts = [i * STEP for i in range(N)]
    cpu = [_wiggle(i, 0.2, 0.005) + (0.7 if t >= FAULT else 0.0) for i, t in enumerate(ts)]
    latency = [_wiggle(i, 0.05, 0.001) + (0.2 if t >= FAULT else 0.0) for i, t in enumerate(ts)]
    quiet = [_wiggle(i, 0.3, 0.005) for i in range(N)]
    return [
        MetricSeries(
            service="carts", signal="cpu_usage_cores", kind=SignalKind.CPU, timestamps=ts, values=cpu
        ),
        MetricSeries(
            service="carts",
            signal="latency_p90_seconds",
            kind=SignalKind.LATENCY,
            timestamps=ts,
            values=latency,
        ),
        MetricSeries(
            service="user", signal="cpu_usage_cores", kind=SignalKind.CPU, timestamps=ts, values=quiet
        ),
    ]


def _traffic() -> list[LogRecord]:
    """Both services' ordinary request lines, all through the recording."""
    return [
        LogRecord(timestamp=t / 2.0, service=svc, message=f"handled request {int(t)} in 12ms")
        for t in range(0, 2 * N * int(STEP))
        for svc in ("carts", "user")
        if t % 3 == 0
    ]


def _logs() -> list[LogRecord]:
    logs = _traffic()
    # the fault's own error, every two seconds from its first occurrence on
    logs += [
        LogRecord(
            timestamp=FAULT + 4.0 + 2.0 * k,
            service="carts",
            level="error",
            message="cart store refused the write",
        )
        for k in range(100)
    ]
    # a background failure that came and went three minutes before the fault
    logs += [
        LogRecord(
            timestamp=FAULT - 180.0 + 2.0 * k,
            service="user",
            level="error",
            message="session cache timed out",
        )
        for k in range(10)
    ]
    return sorted(logs, key=lambda r: r.timestamp)


def _bundle(alert: float, logs: bool = False) -> EvidenceBundle:
    incident = Incident(
        id="inc-split",
        title="carts latency",
        window=TimeWindow(
            start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp((N - 1) * STEP, UTC)
        ),
        alert_time=datetime.fromtimestamp(alert, UTC),
    )
    return EvidenceBundle(incident=incident, metrics=_metrics(), logs=_logs() if logs else [])


def test_the_metric_onset_is_the_same_whether_the_alert_is_on_time_or_late() -> None:
    for delay in (0.0, 60.0, 180.0):
        split = incident_split(_bundle(FAULT + delay))
        assert split.detected
        assert split.normal_end == split.incident_start == FAULT, delay


def test_the_events_are_split_at_their_own_onset_not_at_the_alert() -> None:
    for delay in (0.0, 60.0, 180.0):
        split = incident_split(_bundle(FAULT + delay, logs=True))
        # the fault's first error line is in the incident, the minutes before it are normal
        assert FAULT <= split.event_split <= FAULT + 4.0, delay
    # without event dating the events' split is a fixed lead before the alert, late for a late alert
    late = incident_split(_bundle(FAULT + 180.0, logs=True), DEFAULT_OPTIONS.with_(event_onset=False))
    assert late.event_split == FAULT + 180.0 - EVENT_LEAD_SECONDS


def test_an_alert_at_the_faults_nominal_start_dates_the_events_as_far_ahead_as_the_metrics() -> None:
    # a recorded alert time that is the fault's nominal start: its effect shows 45 s later, in the
    # metrics and in its first error lines alike
    alert = FAULT - 45.0
    split = incident_split(_bundle(alert, logs=True))
    assert split.normal_end == FAULT
    assert FAULT <= split.event_split <= FAULT + 4.0
    assert split.event_split - alert > EVENT_LEAD_SECONDS


def test_event_onset_needs_an_error_that_rose() -> None:
    quiet = [r for r in _logs() if r.level != "error"]
    assert event_onset(quiet, [], 0.0, FAULT - 300.0, FAULT + 30.0) is None
    found = event_onset(_logs(), [], 0.0, FAULT - 300.0, FAULT + 30.0)
    assert found is not None and found.sharp
    assert found.time == FAULT + 4.0 and found.strength >= MIN_ONSET_Z


def test_the_log_summary_and_the_tools_read_the_engines_split() -> None:
    bundle = _bundle(FAULT + 120.0, logs=True)
    split = incident_split(bundle)
    summary = summarize_logs(bundle)
    assert summary.split == split.event_split
    assert normal_end(bundle) == split.normal_end
    new_errors = [t for t in summary.templates if t.error and t.change == "new"]
    assert [t.service for t in new_errors] == ["carts"]


def test_an_error_already_rising_when_the_search_range_begins_is_dated_from_its_first_line() -> None:
    # An alert that fires later than the usual for: (a burn-rate rule over a long window, a slow
    # rollout) bounds the search after the fault's first errors: they are not normal.
    late_range = FAULT + 60.0
    found = event_onset(_logs(), [], 0.0, late_range, late_range + 330.0)
    assert found is not None and found[0] == FAULT + 4.0
    # the same error in an earlier burst, over before the range began, does not pull the onset back
    earlier = [
        LogRecord(timestamp=FAULT - 250.0 + 2.0 * k, service="carts", level="error", message=r.message)
        for k, r in enumerate([r for r in _logs() if r.level == "error" and r.service == "carts"][:10])
    ]
    logs = sorted([*_logs(), *earlier], key=lambda r: r.timestamp)
    found = event_onset(logs, [], 0.0, FAULT - 100.0, FAULT + 30.0)
    assert found is not None and FAULT + 4.0 <= found[0] < FAULT + 30.0


def _few_errors_after_an_earlier_episode() -> list[LogRecord]:
    """A fault whose error is too rare to date the events on its own: 20 lines from FAULT + 4 s,
    one every 6 s, where the same error had already come and gone 8 times three minutes before."""
    error = "cart store refused the write"
    lines = [
        LogRecord(timestamp=FAULT + 4.0 + 6.0 * k, service="carts", level="error", message=error)
        for k in range(20)
    ]
    lines += [
        LogRecord(timestamp=FAULT - 200.0 + 6.0 * k, service="carts", level="error", message=error)
        for k in range(8)
    ]
    return sorted([*_traffic(), *lines], key=lambda r: r.timestamp)


def _without_metrics(alert: float, logs: list[LogRecord]) -> EvidenceBundle:
    # no metric onset: the events' split is theirs alone (``events_follow_metrics`` is tested apart)
    return EvidenceBundle(incident=_bundle(alert).incident, metrics=[], logs=logs)


def test_an_error_too_weak_to_date_the_events_still_moves_a_late_alerts_split_back() -> None:
    logs = _few_errors_after_an_earlier_episode()
    found = event_onset(logs, [], 0.0, FAULT - 300.0, FAULT + 30.0)
    assert found is not None and not found.sharp
    assert found.time == FAULT + 4.0 and MIN_Z <= found.strength < MIN_ONSET_Z
    for delay in (60.0, 180.0):
        bundle = _without_metrics(FAULT + delay, logs)
        # the fault's first error line counts in the incident, not a fixed lead before the late alert
        assert incident_split(bundle).event_split == FAULT + 4.0 - EVENT_MARGIN_SECONDS, delay
        fixed = incident_split(bundle, DEFAULT_OPTIONS.with_(weak_event_onset=False))
        assert fixed.event_split == FAULT + delay - EVENT_LEAD_SECONDS, delay


def test_a_weak_error_rise_never_moves_the_events_split_later_than_the_fixed_lead() -> None:
    # the alert fires 10 s after the fault: the fixed lead already counts the errors in the incident,
    # and a weak rise (possibly chance) must not count the 20 s before them as normal
    bundle = _without_metrics(FAULT + 10.0, _few_errors_after_an_earlier_episode())
    assert incident_split(bundle).event_split == FAULT + 10.0 - EVENT_LEAD_SECONDS


def test_an_error_below_what_the_event_comparison_counts_dates_nothing() -> None:
    logs = [r for r in _few_errors_after_an_earlier_episode() if r.timestamp < FAULT + 4.0 + 6.0 * 6]
    # six lines after eight in the normal period: below events.MIN_Z at every candidate
    assert event_onset(logs, [], 0.0, FAULT - 300.0, FAULT + 30.0) is None
    assert (
        incident_split(_without_metrics(FAULT + 60.0, logs)).event_split == FAULT + 60.0 - EVENT_LEAD_SECONDS
    )


def _stopped_statement_logs() -> list[LogRecord]:
    """A fault that writes no error: carts stops writing one of its statements, keeps handling requests."""
    logs = _traffic()
    logs += [
        LogRecord(timestamp=float(t), service="carts", message=f"stock reserved for cart {t}")
        for t in range(0, int(FAULT) + 3, 2)
    ]
    return sorted(logs, key=lambda r: r.timestamp)


def test_a_statement_that_stops_dates_the_events_when_no_error_rose() -> None:
    for delay in (0.0, 60.0, 180.0):
        incident = _bundle(FAULT + delay).incident
        bundle = EvidenceBundle(incident=incident, metrics=_metrics(), logs=_stopped_statement_logs())
        split = incident_split(bundle)
        # the statement's last line is just after FAULT: the split is within a candidate step of it,
        # not a fixed lead before a late alert (which would count the fault's minutes as normal)
        assert FAULT <= split.event_split <= FAULT + 10.0, (delay, split.event_split - FAULT)
    quiet = [r for r in _stopped_statement_logs() if "stock" not in r.message]
    assert event_onset(quiet, [], 0.0, FAULT - 300.0, FAULT + 30.0) is None


def test_a_statement_too_rare_to_date_the_events_still_moves_a_late_alerts_split_back() -> None:
    """A statement written every 10 s that stops for good: its fall is past what the event
    comparison counts, under the onset bar. Like a weak error rise, it dates the events of a late
    alert (Train Ticket ``10:50:16`` one minute late: a travel service stopped one statement, 4.4 sd)."""
    logs = _traffic()
    logs += [
        LogRecord(timestamp=float(t), service="carts", message=f"stock reserved for cart {t}")
        for t in range(0, int(FAULT) + 3, 10)
    ]
    logs.sort(key=lambda r: r.timestamp)
    found = event_onset(logs, [], 0.0, FAULT - 300.0, FAULT + 30.0)
    assert found is not None and not found.sharp
    assert MIN_Z <= found.strength < MIN_ONSET_Z and FAULT <= found.time <= FAULT + 5.0
    assert event_onset(logs, [], 0.0, FAULT - 300.0, FAULT + 30.0, weak_stops=False) is None
    for delay in (60.0, 180.0):
        bundle = _without_metrics(FAULT + delay, logs)
        assert incident_split(bundle).event_split == found.time - EVENT_MARGIN_SECONDS, delay
        fixed = incident_split(bundle, DEFAULT_OPTIONS.with_(weak_stopped_statement=False))
        assert fixed.event_split == FAULT + delay - EVENT_LEAD_SECONDS, delay


def test_of_a_weak_error_rise_and_a_weak_stop_the_earlier_dates_the_events() -> None:
    """A fault's own change comes before what it causes: a rare statement that stopped a minute
    before a weak error rise dates the events; one that stopped a minute after it does not."""
    for stopped_at, expected in ((FAULT - 60.0, FAULT - 55.0), (FAULT + 60.0, FAULT + 4.0)):
        logs = _few_errors_after_an_earlier_episode()
        logs += [
            LogRecord(timestamp=float(t), service="carts", message=f"stock reserved for cart {t}")
            for t in range(0, int(stopped_at) + 3, 10)
        ]
        logs.sort(key=lambda r: r.timestamp)
        found = event_onset(logs, [], 0.0, FAULT - 300.0, FAULT + 30.0)
        assert found is not None and not found.sharp and found.time == expected, (stopped_at, found)
        # without weak stops, the weak error rise alone
        alone = event_onset(logs, [], 0.0, FAULT - 300.0, FAULT + 30.0, weak_stops=False)
        assert alone is not None and alone.time == FAULT + 4.0


def _recorded_around_the_fault() -> list[LogRecord]:
    """Ordinary request lines kept only from a minute before the fault to a minute after it (a
    recording that keeps events around its faults, or a collector that stopped): no error rose and
    no statement stopped, so nothing dates the events."""
    return [r for r in _traffic() if FAULT - 60.0 <= r.timestamp <= FAULT + 60.0]


def test_a_fixed_split_after_the_last_recorded_event_moves_back_to_their_last_stretch() -> None:
    logs = _recorded_around_the_fault()
    # (the split at the metric onset is tested below; here the fixed lead alone)
    alone = DEFAULT_OPTIONS.with_(events_follow_metrics=False)
    for delay in (0.0, 60.0):
        # events were recorded between the fixed split and the alert: it stays
        bundle = EvidenceBundle(incident=_bundle(FAULT + delay).incident, metrics=_metrics(), logs=logs)
        assert incident_split(bundle, alone).event_split == FAULT + delay - EVENT_LEAD_SECONDS, delay
    late = EvidenceBundle(incident=_bundle(FAULT + 180.0).incident, metrics=_metrics(), logs=logs)
    # alert - 30 s is after the last recorded event: the fault's events would all count as normal
    # and the incident side would hold none; the split goes back to where the events' stretch began
    split = incident_split(late, alone)
    assert FAULT - 62.0 <= split.event_split <= FAULT - 59.0, split.event_split - FAULT
    fixed = incident_split(late, alone.with_(event_gaps=False))
    assert fixed.event_split == FAULT + 180.0 - EVENT_LEAD_SECONDS


def _long_recording(fault: float, n: int) -> list[MetricSeries]:
    """The carts fault of ``_metrics`` in a recording of ``n`` samples, shifting at ``fault``."""
    ts = [i * STEP for i in range(n)]
    cpu = [_wiggle(i, 0.2, 0.005) + (0.7 if t >= fault else 0.0) for i, t in enumerate(ts)]
    quiet = [_wiggle(i, 0.3, 0.005) for i in range(n)]
    return [
        MetricSeries(
            service="carts", signal="cpu_usage_cores", kind=SignalKind.CPU, timestamps=ts, values=cpu
        ),
        MetricSeries(
            service="user", signal="cpu_usage_cores", kind=SignalKind.CPU, timestamps=ts, values=quiet
        ),
    ]


def test_a_shift_that_began_before_the_search_range_is_dated_where_it_began() -> None:
    # An alert six minutes after its fault (later than the usual for:): the search range starts a
    # minute after the shift, so its first point is the best split inside it, but not the onset.
    # (The shift's minute before the range is under 5% of the points scored against.)
    n, fault = 240, 150.0 * STEP
    alert = fault + 360.0
    incident = Incident(
        id="inc-late",
        title="carts cpu",
        window=TimeWindow(
            start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp((n - 1) * STEP, UTC)
        ),
        alert_time=datetime.fromtimestamp(alert, UTC),
    )
    bundle = EvidenceBundle(incident=incident, metrics=_long_recording(fault, n))
    assert incident_split(bundle).normal_end == fault
    bounded = incident_split(bundle, DEFAULT_OPTIONS.with_(rise_start=False))
    assert bounded.normal_end == alert - 300.0


def test_the_events_are_dated_by_the_first_error_to_rise_not_by_the_sharper_cascade_after_it() -> None:
    # A minute after the fault's own error, its callers fail too, and louder (more requests): with the
    # alert three minutes late both are in the search range; the fault is where the first one rose.
    cascade = [
        LogRecord(
            timestamp=FAULT + 60.0 + 0.5 * k, service="orders", level="error", message="carts call timed out"
        )
        for k in range(300)
    ]
    logs = sorted([*_logs(), *cascade], key=lambda r: r.timestamp)
    found = event_onset(logs, [], 0.0, FAULT - 120.0, FAULT + 210.0)
    assert found is not None and found[0] == FAULT + 4.0
    incident = _bundle(FAULT + 180.0).incident
    split = incident_split(EvidenceBundle(incident=incident, metrics=_metrics(), logs=logs))
    assert FAULT <= split.event_split <= FAULT + 4.0


def test_a_statement_that_stopped_before_the_first_error_dates_the_events() -> None:
    # carts stops writing a statement at the fault (its code path changed) and its callers' errors
    # follow a minute later: the fault is where the statement stopped, not where the errors began
    errors = [
        LogRecord(
            timestamp=FAULT + 60.0 + 2.0 * k, service="orders", level="error", message="carts call failed"
        )
        for k in range(60)
    ]
    logs = sorted([*_stopped_statement_logs(), *errors], key=lambda r: r.timestamp)
    split = incident_split(
        EvidenceBundle(incident=_bundle(FAULT + 180.0).incident, metrics=_metrics(), logs=logs)
    )
    assert FAULT <= split.event_split <= FAULT + 10.0, split.event_split - FAULT


def test_without_a_dating_event_the_events_normal_period_ends_at_the_metric_onset() -> None:
    # ordinary request lines only: nothing dates the events, but the metrics placed the onset at
    # FAULT; a fixed lead before a late alert would count the incident's first minutes as normal
    late = EvidenceBundle(incident=_bundle(FAULT + 180.0).incident, metrics=_metrics(), logs=_traffic())
    assert incident_split(late).event_split == FAULT
    alone = incident_split(late, DEFAULT_OPTIONS.with_(events_follow_metrics=False))
    assert alone.event_split == FAULT + 180.0 - EVENT_LEAD_SECONDS
    # a split that falls where no event was recorded moves to the first one after it
    islands = [
        r for r in _traffic() if FAULT - 200.0 <= r.timestamp <= FAULT - 150.0 or r.timestamp >= FAULT + 40.0
    ]
    gapped = EvidenceBundle(incident=_bundle(FAULT + 60.0).incident, metrics=_metrics(), logs=islands)
    first_after = min(r.timestamp for r in islands if r.timestamp >= FAULT)
    assert incident_split(gapped).event_split == first_after - 1.0


def test_a_metric_onset_at_the_search_ranges_first_point_does_not_date_the_events() -> None:
    # the metrics shifted long before the range and the curve gives no rise to walk back along
    # (rise_start off): the onset is where the range begins, which dates nothing
    n, fault = 240, 100.0 * STEP
    alert = fault + 320.0
    incident = Incident(
        id="inc-bound",
        title="carts cpu",
        window=TimeWindow(
            start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp((n - 1) * STEP, UTC)
        ),
        alert_time=datetime.fromtimestamp(alert, UTC),
    )
    logs = [
        LogRecord(timestamp=t / 2.0, service="user", message=f"handled request {t}")
        for t in range(0, 4 * n * 5, 3)
    ]
    bundle = EvidenceBundle(incident=incident, metrics=_long_recording(fault, n), logs=logs)
    split = incident_split(bundle, DEFAULT_OPTIONS.with_(rise_start=False))
    assert split.normal_end == alert - 300.0
    assert split.event_split == alert - EVENT_LEAD_SECONDS


def test_an_error_first_seen_after_the_alert_does_not_date_the_events() -> None:
    # the next incident's error begins 70 s after the alert: a candidate near the end of the range
    # counts it within its look-ahead, but it did not exist when the alert fired; nor, added to the
    # user service's lines, does it make that service's request line look stopped
    later = [
        LogRecord(
            timestamp=FAULT + 250.0 + 2.0 * k, service="user", level="error", message="payment gateway down"
        )
        for k in range(60)
    ]
    logs = sorted([*_traffic(), *later], key=lambda r: r.timestamp)
    alert = FAULT + 180.0
    for forward in (30.0, EVENT_FORWARD_SECONDS, 65.0):
        assert event_onset(logs, [], 0.0, alert - 300.0, alert + forward) is None, forward
    split = incident_split(EvidenceBundle(incident=_bundle(alert).incident, metrics=_metrics(), logs=logs))
    assert split.event_split == FAULT  # nothing dates the events: the metric onset does


def test_events_follow_a_metric_onset_walked_back_before_the_search_range() -> None:
    # The shift began a minute before the range the alert bounds (rise_start walks the onset back
    # there) and ordinary lines come every 1.5 s: nothing dates the events, so they follow the
    # metric onset, and the lines between it and the range are no silence to move the split past.
    n, fault = 240, 150.0 * STEP
    alert = fault + 360.0
    incident = Incident(
        id="inc-late-dense",
        title="carts cpu",
        window=TimeWindow(
            start=datetime.fromtimestamp(0, UTC), end=datetime.fromtimestamp((n - 1) * STEP, UTC)
        ),
        alert_time=datetime.fromtimestamp(alert, UTC),
    )
    lines = [
        LogRecord(timestamp=1.5 * k, service="carts", message=f"handled request {k} in 12ms")
        for k in range(int((n - 1) * STEP / 1.5))
    ]
    split = incident_split(EvidenceBundle(incident=incident, metrics=_long_recording(fault, n), logs=lines))
    assert split.normal_end == fault
    assert split.event_split == split.normal_end


def _reopened(quiet_since: float | None) -> EvidenceBundle:
    """A frontend whose calls to orders failed in an earlier episode (100 to 60 s before the fault,
    resolved 40 s before it), then fail again with users' fault: its client error reads the same."""
    logs = _traffic()
    logs += [
        LogRecord(
            timestamp=t, service="frontend", level="error", message=f"call to {peer} failed with HTTP 500"
        )
        for peer, first, last in (
            ("orders", FAULT - 100.0, FAULT - 60.0),
            ("users", FAULT + 2.0, FAULT + 200.0),
        )
        for t in (first + 2.0 * k for k in range(int((last - first) / 2.0)))
    ]
    logs += [
        LogRecord(
            timestamp=FAULT + 2.0 + 2.0 * k, service="users", level="error", message="deadlock detected"
        )
        for k in range(100)
    ]
    bundle = _bundle(FAULT + 10.0)
    bundle.logs = sorted(logs, key=lambda r: r.timestamp)
    if quiet_since is not None:
        bundle.incident = bundle.incident.model_copy(
            update={"quiet_since": datetime.fromtimestamp(quiet_since, UTC)}
        )
    return bundle


def test_a_reopened_episodes_events_are_not_dated_by_the_earlier_episodes_errors() -> None:
    # without knowing of the earlier episode, the first error rise in the range is that episode's
    assert incident_split(_reopened(None)).event_split < FAULT - 90.0
    # the store knows when it resolved: the events are dated after it, by this fault's errors
    assert FAULT <= incident_split(_reopened(FAULT - 40.0)).event_split <= FAULT + 2.0
    # a quiet before the search range changes nothing
    assert incident_split(_reopened(5.0)).event_split < FAULT - 90.0


def _store_down(alert: float) -> EvidenceBundle:
    """A store stops at FAULT: its target health reads 0 from that sample on; its three callers'
    error ratios (rates over a window) climb over the next three samples."""
    ts = [i * STEP for i in range(N)]
    store_up = [1.0 if t < FAULT else 0.0 for t in ts]

    def errors(i: int, t: float) -> float:
        ramp = min(max((t - FAULT) / (3 * STEP), 0.0), 1.0)
        return _wiggle(i, 0.01, 0.001) + 0.6 * ramp

    metrics = [
        MetricSeries(service="redis", signal="target_up", kind=SignalKind.UP, timestamps=ts, values=store_up),
        *(
            MetricSeries(
                service=caller,
                signal="error_ratio",
                kind=SignalKind.ERRORS,
                timestamps=ts,
                values=[errors(i, t) for i, t in enumerate(ts)],
            )
            for caller in ("cart", "catalog", "frontend")
        ),
    ]
    incident = _bundle(alert).incident
    return EvidenceBundle(incident=incident, metrics=metrics)


def test_a_target_that_went_down_dates_the_incident_at_its_first_down_sample() -> None:
    for delay in (60.0, 180.0):
        bundle = _store_down(FAULT + delay)
        assert incident_split(bundle).normal_end == FAULT, delay
        # the curve alone places the change where the callers' errors have risen, after the store's
        # first down samples (without the walk back to the start of their ramp, which dates it too)
        late = DEFAULT_OPTIONS.with_(down_onset=False, rise_start=False)
        assert incident_split(bundle, late).normal_end > FAULT, delay


def test_a_target_that_came_back_or_was_never_up_dates_nothing() -> None:
    came_back = _store_down(FAULT + 60.0)
    up = came_back.metrics[0]
    up.values[-2:] = [1.0, 1.0]
    assert _down_onset(came_back.metrics, (FAULT - 100.0, FAULT + 60.0), N * STEP) is None
    never_up = _store_down(FAULT + 60.0)
    never_up.metrics[0].values[:] = [0.0] * N
    assert _down_onset(never_up.metrics, (0.0, FAULT + 60.0), N * STEP) is None
    # a fall before the search range is not this alert's onset
    assert _down_onset(_store_down(FAULT + 60.0).metrics, (FAULT + 10.0, FAULT + 60.0), N * STEP) is None


def test_a_statement_that_pauses_and_comes_back_dates_nothing() -> None:
    """A statement absent for a stretch longer than the counted one after a candidate, then back
    while the service kept logging, is a lull in the request mix, not a stopped code path."""
    logs = _traffic()
    logs += [
        LogRecord(timestamp=float(t), service="carts", message=f"stock reserved for cart {t}")
        for t in range(0, 2 * N * int(STEP) // 2, 2)
        if not FAULT <= t < FAULT + 150.0
    ]
    logs.sort(key=lambda r: r.timestamp)
    assert event_onset(logs, [], 0.0, FAULT - 300.0, FAULT + 30.0) is None
    # the same statement, gone for good, dates the events where it stopped
    stopped = [r for r in logs if "stock" not in r.message or r.timestamp < FAULT]
    found = event_onset(stopped, [], 0.0, FAULT - 300.0, FAULT + 30.0)
    assert found is not None and found.sharp and FAULT - 5.0 <= found.time <= FAULT + 5.0


def test_a_window_that_reaches_past_the_data_splits_where_the_data_does() -> None:
    """A live incident's window ends its look-ahead after the alert, in the future when it is
    investigated: the minutes without samples are not the incident's, and the fault a minute before
    the alert is still dated."""
    alert = FAULT + 60.0
    seen = alert + 5.0  # investigated five seconds after the alert
    metrics = [
        s.model_copy(
            update={
                "timestamps": [t for t in s.timestamps if t <= seen],
                "values": [v for t, v in zip(s.timestamps, s.values, strict=True) if t <= seen],
            }
        )
        for s in _metrics()
    ]
    incident = _bundle(alert).incident
    window = TimeWindow(start=incident.window.start, end=datetime.fromtimestamp(seen + 1800.0, UTC))
    bundle = EvidenceBundle(incident=incident.model_copy(update={"window": window}), metrics=metrics)
    split = incident_split(bundle)
    assert split.detected and split.normal_end == FAULT
    assert split.window_end <= seen + STEP


def test_a_ramp_is_dated_where_it_began() -> None:
    """A rate over a one-minute window turns a fault's step into a one-minute ramp of the anomaly
    curve. Investigated seconds after the alert, the mean-shift change point fell 20 s into it (the
    live lab's CPU hog on payment, seed 67; this is its curve, 5-s cells): the ramp's first points
    would be the normal period's."""
    normal = [0.0] * 20 + [1.2, 0.0, 0.0]  # one noisy cell long before
    ramp = [4.96, 7.44, 7.77, 7.74, 9.68, 12.0, 14.07, 15.91, 19.45, 20.38, 20.42, 21.91, 21.48, 21.65]
    curve = np.array(normal + [0.0] * 5 + ramp, dtype=np.float64)
    first = len(normal) + 5
    floor = len(normal)  # the search range's first cell
    assert _ramp_start(curve, first + 4, floor) == first
    # the walk stops at what the points before the range show: not at a wiggle, not before the range
    assert _ramp_start(curve, first, floor) == first
    assert _ramp_start(np.array([0.0, 3.0, 3.0, 5.0, 9.0]), 4, 1) == 1
