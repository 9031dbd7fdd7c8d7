"""Switches and parameters of the statistical engine.

Every technique can be turned off on its own, so its contribution can be measured (``scripts/ablation.py``):
the defaults are what the engine runs with.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineOptions:
    # Floor each series' robust scale by its unit (percent points, seconds, bytes, cores...) and
    # its own level, and weigh signal kinds by how often they move in a cause rather than a victim.
    # Off: the plain IQR scale with a tiny epsilon, every kind weighted 1 (BARO-like).
    kind_normalisation: bool = True
    # Find the incident's onset as the change point of the whole system's anomaly curve near the
    # alert, instead of trusting the alert time minus a fixed lead.
    onset_detection: bool = True
    # A point must stray from the last few normal points as well as from the whole normal period,
    # so a level that drifted before the onset is not scored as the incident.
    recent_baseline: bool = True
    # Discount services whose anomaly an anomalous callee explains; favour anomalous services
    # whose callees are healthy. Graph from the bundle's topology plus the call edges in spans.
    topology: bool = True
    # Within the topology step: a callee explains its caller's anomaly only if its own anomaly did
    # not start later (by more than one sample); a later one is a consequence, not a cause.
    causal_order: bool = True
    # Within the topology step: a service whose strongest evidence is its own CPU, memory, disk or
    # restarts is not discounted as a victim (callees make callers wait, not burn CPU or memory).
    resource_causes: bool = True
    # New or sharply increased log templates per service (error templates weighted up).
    logs: bool = True
    # Per-service self time and error share of spans, against the normal period.
    traces: bool = True
    # Per-service event patterns from logs and spans (log templates, operations, calls per caller,
    # error spans) whose share of the traffic changed, by a conditional binomial test against the
    # normal period (``patterns.py``); replaces the log-template channel when on. On, together with
    # ``channel_calibration``: alone its scores sit below metric noise (see there); calibrated, it is
    # what finds code-level faults (wrong return values, injected exceptions) that metrics miss.
    # Costs ~0.4 s per case with logs and spans (templating and counting every line and span).
    patterns: bool = True
    # Score each evidence channel (metric, trace, log, pattern) by how far a service stands out from
    # the other services in that channel (its value above the channel's median), so a channel in
    # which every service looks anomalous cannot outweigh one in which a single service does.
    # Off by default: measured +0.03 AC@3 on Nezha TT but -0.05 AC@3 on PetShop (with traffic
    # weighting the subtracted median no longer preserves the metric-only order).
    channel_contrast: bool = False
    # Put each evidence channel (trace, log, pattern) on the metric channel's scale by how
    # exceptional a service is in it among the incident's services (robust z across services,
    # ``channels.calibrate``), instead of comparing raw scores whose scales differ per channel (a
    # 5-7 sd pattern shift is ~2 on the log scale, below metric noise at 4-5), and weigh a channel
    # by how few services stand out in it. The metric channel is the reference and unchanged, so
    # incidents with metrics only rank as without it. Meant together with ``patterns``: measured
    # with it (full eval), Nezha TT AC@1/AC@3 0.21/0.32 -> 0.25/0.46, OB/Sock Shop/PetShop AC@1/@3
    # unchanged, TT AC@5 0.50 -> 0.46. Engine median on TT 0.48 -> 0.86 s on a quiet machine (1.8 s
    # pipeline time when the machine was loaded). Alone it lifts trace noise (TT AC@1 0.14).
    channel_calibration: bool = True
    # Fault type from the specific cause signals (cpu, memory, errors) that moved first; latency
    # is the residual class. Off: the kind of the single strongest signal decides.
    fault_ordering: bool = True
    # Where a service's request counts are recorded, score its error share as a count of failed
    # requests in Poisson units (a 0% availability on 3 requests is ~3 sd, not 200), and weigh
    # each suspect by how much of the alerted service's excess latency or failures its own excess
    # (per request, times its traffic) could account for.
    traffic_weighting: bool = True
    # Onset detection never splits at the first point after a gap in the recording (a scrape
    # outage, a normal period recorded apart and joined on, minutes left out): a level that differs
    # across a gap cannot be dated, so the normal period reaches into the incident's own stretch.
    gap_aware_onset: bool = True
    # Fault typing: when CPU and memory moved in the same sample, the one that made most of its
    # move within its first minute is the fault's resource, the one still growing a side effect
    # (``faults.py``); the magnitude rule decides only when the shapes do not.
    fault_shape: bool = True
    # Event patterns: where the incident names a reference period known to be normal (and its logs
    # or spans were collected), its events join the normal side of the comparison: the minutes before
    # an alert may be an earlier incident's (``Incident.reference``, ``patterns._Periods``). Error
    # statements are also compared with the reference alone (``patterns._new_against_reference``):
    # a failure that began before the alert has not changed against the minutes before it.
    reference_period: bool = True
    # After calibration, scale each evidence channel by how concentrated it is on one service (its
    # top service's share of the channel's total) relative to the most concentrated channel
    # (``channels.weigh_by_concentration``): evidence spread over many services says something is
    # wrong, not where.
    channel_concentration: bool = True
    # Fault typing: a log statement of a service that fell at least 2x below the traffic it rides on
    # (``patterns.stopped_code_path``) is code-level evidence (errors-code): an injected exception
    # or a wrong return value stops a code path without raising an error line. Measured on Nezha
    # Train Ticket: type right for 10 -> 13 of the 14 cases ranked first; no other dataset changed.
    # So is a span operation that fell as far below its parent operation in the same service (a
    # step of the handler no longer reached): Online Boutique type among rank-1 cases 0.67 -> 0.76
    # (both adservice code faults), nothing else moved. So is a call edge that went silent
    # (``calls.stopped_calls``).
    code_path_falls: bool = True

    # Event patterns: the incident side counts only events within the incident's first minutes
    # (``patterns.EVENT_HORIZON_SECONDS``), not every event up to the window's end: the fault's own
    # events come first, its aftermath (retries, recoveries, the next change) later.
    event_horizon: bool = True
    # Event patterns: a log statement that fell at least 2x below the traffic it rides on (the span
    # operation it is written in, else its service's typical event) weighs as an error event, not
    # as a non-error one: its code path stopped while requests kept coming (an exception or a
    # changed return value skipping it), which a victim of a broken caller does not show
    # (``patterns.stopped_code_path``). Measured on Nezha Train Ticket AC@1/AC@3: 0.64/0.89 off,
    # 0.75/0.89 on; no other dataset moved.
    stopped_code_paths: bool = True
    # Event patterns: only errors that rise and events that fall are evidence; a non-error event
    # that rises (a statement, operation or call, new or not) is what a change in the request mix
    # looks like (``patterns._fault_evidence``). Such rises still mark a service as changed for the
    # error-origin walk. Measured on Nezha Train Ticket AC@1/AC@3: 0.79/0.89 with them, 0.89/0.93
    # without; no other dataset moved.
    error_rises_only: bool = True
    # Per-edge call metrics: a call edge that went silent while its caller kept being called is a
    # code path of the caller that stopped (``calls.stopped_calls``), a pattern event of the caller.
    stopped_calls: bool = True
    # Fault typing: a series counts only as far as it is still out from one sample before the alert
    # on (``scoring.score_arrays``' ``current_from``); a move that rose and fell back before the
    # alert fired is an earlier episode (a previous fault's CPU or memory burst, a deploy's warm-up)
    # that the onset search reached back into, not what the alert is about. One sample of slack
    # because the alert and the sampling grid are not aligned. Scores are unchanged: only the type
    # reads it. Measured on Nezha, type among rank-1 cases: Online Boutique 0.71 off, 0.86 on; Train
    # Ticket 0.92 off, 0.96 on; Sock Shop and PetShop unchanged (together with the residual class of
    # ``faults.classify``, which alone moved Online Boutique 0.76 -> 0.71: it types one network delay
    # right and one CPU hog, typed right before by a 1.8-sd CPU wiggle, wrong).
    current_moves: bool = True
    # Traces: a handler that stopped taking a step it took on every request, at a change point in
    # its own spans (``handlers.truncated_handlers``), is a stopped code path of its service; it
    # needs no normal period before the window, only the handler's own earlier requests. Measured
    # on Nezha (AC@1/AC@3): Online Boutique 0.88/0.92 off, 0.92/0.96 on (a checkout that returned
    # early, in a recording that starts 30 s before its alert); Train Ticket, Sock Shop and
    # PetShop unchanged.
    truncated_handlers: bool = True


DEFAULT_OPTIONS = EngineOptions()
