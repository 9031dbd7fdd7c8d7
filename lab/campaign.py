"""The campaign: inject faults one after another and measure opsagent on the live incidents they cause.

For each fault: wait until the shop is quiet (no alert active in Alertmanager, nothing being
investigated); inject; watch Alertmanager's alerts and opsagent's incidents until an investigation
that started after the fault has finished (or the cap runs out); save the incident with
``opsagent record`` as a native recorded incident whose ``truth`` is the fault's target and type;
clear the fault; let the shop recover. At the end, ``opsagent eval`` replays every recorded case,
and the JSON report (the Interface of docs/LAB.md) is written.

Times: ``fault_to_alert_s`` runs from injection to the first alert's ``startsAt`` (when Prometheus
fired it, after the rule's ``for:``); ``alert_to_findings_s`` from that ``startsAt`` to the end of the
first investigation opsagent ran for the episode, so it includes Alertmanager's ``group_wait`` and
the webhook; ``webhook_to_findings_s`` from opsagent's receipt of the alert.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from lab import inject, layout, stack

_AM = f"http://{layout.HOST}:{layout.ALERTMANAGER}"
_PROM = f"http://{layout.HOST}:{layout.PROMETHEUS}"
_API = f"http://{layout.HOST}:{layout.OPSAGENT}/v1"


def _ts(text: str | None) -> float | None:
    if not text or text.startswith("0001-"):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _key(fingerprint: str, starts_at: str) -> tuple[str, int]:
    stamp = _ts(starts_at) or 0.0
    return fingerprint, round(stamp * 1000)  # Alertmanager and opsagent print different precisions


def _log(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {message}", flush=True)


# ---------------------------------------------------------------------------------------------------
# The plan


def plan(seed: int, count: int) -> list[tuple[str, str]]:
    """``count`` faults: every kind in turn (in a seeded order per round), each on the target it has
    used least, and among those the one used least by any kind."""
    rng = random.Random(seed)
    used: dict[str, int] = {}
    pairs: dict[tuple[str, str], int] = {}
    out: list[tuple[str, str]] = []
    kinds = list(inject.KINDS)
    while len(out) < count:
        rng.shuffle(kinds)
        for kind in kinds:
            if len(out) == count:
                break
            targets = list(inject.KINDS[kind].targets)
            rng.shuffle(targets)
            target = min(targets, key=lambda t: (pairs.get((kind, t), 0), used.get(t, 0)))
            used[target] = used.get(target, 0) + 1
            pairs[(kind, target)] = pairs.get((kind, target), 0) + 1
            out.append((kind, target))
    return out


def parse_only(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        kind, _, target = item.partition(":")
        inject.Fault.of(kind, target, 1.0)  # refuses an unknown kind or target now, not mid-campaign
        pairs.append((kind, target))
    return pairs


# ---------------------------------------------------------------------------------------------------
# Watching


class Lab:
    """What the campaign reads: Alertmanager's alerts, opsagent's incidents, Prometheus's history."""

    def __init__(self) -> None:
        self.http = httpx.Client(timeout=10.0)
        self.api = httpx.Client(
            base_url=_API, timeout=15.0, headers={"Authorization": f"Bearer {stack.secret('api-token')}"}
        )

    def active_alerts(self) -> list[dict[str, Any]]:
        response = self.http.get(f"{_AM}/api/v2/alerts", params={"silenced": "false", "inhibited": "false"})
        response.raise_for_status()
        return [a for a in response.json() if a.get("status", {}).get("state") == "active"]

    def rules_quiet(self) -> bool:
        """No alert rule is pending or firing in Prometheus: a pending one would fire during the next
        fault and be taken for its alert (after a restart, a traffic rule can be pending for a minute)."""
        response = self.http.get(f"{_PROM}/api/v1/alerts")
        response.raise_for_status()
        return not response.json()["data"]["alerts"]

    def history_seconds(self) -> float:
        """Seconds of history the shop has had since its youngest service or Prometheus started.

        A lab brought up again keeps its Prometheus data: the samples of the run before end at its
        `down`, and the time between is no normal period. So the scraped history counts only as far
        back as the newest start among the shop's services and Prometheus (their pid files are
        written when they are spawned; Prometheus still reports the old processes' series for a few
        minutes after a restart, so their own start times cannot tell).
        """
        response = self.http.get(
            f"{_PROM}/api/v1/query",
            params={"query": 'count_over_time(up{job="shop",service="frontend"}[3h])'},
        )
        result = response.json()["data"]["result"]
        scraped = float(result[0]["value"][1]) * 5.0 if result else 0.0
        return min(scraped, stack.seconds_since_start(["prometheus", *(s.name for s in layout.SERVICES)]))

    def incidents_since(self, since: float) -> list[dict[str, Any]]:
        response = self.api.get("/incidents", params={"limit": 50})
        response.raise_for_status()
        return [i for i in response.json()["items"] if (_ts(i["updated_at"]) or 0) >= since - 1]

    def incident(self, incident_id: str) -> dict[str, Any]:
        response = self.api.get(f"/incidents/{incident_id}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def last_resolution(self, since: float) -> float | None:
        """When the latest alert opsagent stored since ``since`` resolved (Alertmanager's ``endsAt``)."""
        ends = [
            _ts(alert.get("ends_at")) or 0.0
            for item in self.incidents_since(since)
            for alert in self.incident(item["id"])["alerts"]
            if alert.get("status") == "resolved"
        ]
        ends = [e for e in ends if e >= since]
        return max(ends) if ends else None

    def busy(self) -> bool:
        """An investigation is queued or running (its result would land in the next fault's window)."""
        for item in self.incidents_since(time.time() - 1800):
            for inv in self.incident(item["id"])["investigations"]:
                if inv["status"] in ("queued", "running"):
                    return True
        return False


@dataclass
class Case:
    kind: str
    target: str
    magnitude: float
    fault_type: str
    top: str | None = None
    top_fault_type: str | None = None
    rank_of_truth: int | None = None
    ranking: list[str] = field(default_factory=list)
    fault_to_alert_s: float | None = None
    alert_to_findings_s: float | None = None
    webhook_to_findings_s: float | None = None
    investigation_seconds: float | None = None
    alerts_sent: int = 0
    alerts_received: int = 0
    alertnames: list[str] = field(default_factory=list)
    incident_id: str | None = None
    investigation_id: str | None = None
    recorded: str | None = None
    replay_top: str | None = None
    # The episode's latest finished investigation when the fault was cleared (alerts that joined
    # the incident after the first findings start another one): what the on-call reads by then.
    top_final: str | None = None
    rank_final: int | None = None
    quiet_before: bool = True
    # The top cause's earliest evidence began this many seconds before the injection (positive: the
    # investigation took something older, such as the previous fault, for this one).
    top_evidence_lead_s: float | None = None
    # Which firing of its alert group the incident was when first investigated (1: a new incident;
    # more: a resolved incident reopened as a new episode), and whether it was reopened.
    episode: int | None = None
    reopened: bool | None = None
    # The normal period opsagent started after the previous episode (its gap), seconds before the alert;
    # None when the window was not clamped.
    normal_after_quiet_s: float | None = None
    injected_at: float | None = None
    cleared_at: float | None = None
    load1: float | None = None
    error: str | None = None


def quiet(lab: Lab, minimum: float, cap: float) -> bool:
    """Wait until at least ``minimum`` seconds have passed since the lab's last fault ended (whichever
    run injected it), then until no rule is pending or firing, Alertmanager holds no active alert and
    nothing is being investigated (at most ``cap`` more)."""
    ended = inject.last_end()
    if ended is not None:
        time.sleep(max(0.0, minimum - (time.time() - ended)))
    deadline = time.monotonic() + max(0.0, cap - minimum)
    while time.monotonic() < deadline:
        try:
            if lab.rules_quiet() and not lab.active_alerts() and not lab.busy():
                return True
        except httpx.HTTPError:
            pass
        time.sleep(5)
    return False


def settled(lab: Lab, recovery: float, since: float | None, cap: float) -> bool:
    """Wait until the shop is quiet (``quiet``), then until ``recovery`` seconds after the previous
    fault's alerts resolved: opsagent starts the next normal period ``settle_seconds`` after that
    resolution (docs/LIVE.md), so what is left of ``recovery`` is the normal period before the next
    fault. Without a resolution to read, the time is counted from when the fault was cleared."""
    calm = quiet(lab, 0.0, cap)
    resolved = None
    ended = inject.last_end()
    if since is None and ended is not None:
        # The first fault of a run: the previous run's last fault (a resumed campaign) counts too.
        since = ended - cap
    if since is not None:
        try:
            resolved = lab.last_resolution(since)
        except httpx.HTTPError:
            resolved = None
    base = resolved if resolved is not None else ended
    if base is not None:
        time.sleep(max(0.0, recovery - (time.time() - base)))
    # Something that began to fire during the wait (a flapping rule) would be taken for the next fault.
    return quiet(lab, 0.0, 120.0) and calm


_QUIET_START = re.compile(r"starts at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC, after")


def quiet_start(gaps: list[dict[str, Any]]) -> float | None:
    """Where opsagent started the normal period after an earlier episode (its ``normal period`` gap)."""
    for gap in gaps:
        found = (
            _QUIET_START.search(str(gap.get("reason", ""))) if gap.get("source") == "normal period" else None
        )
        if found:
            return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    return None


def _payload(incident: dict[str, Any], alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """An Alertmanager (version 4) payload of the episode's alerts, as opsagent received them."""
    common = dict(alerts[0]["labels"])
    for alert in alerts[1:]:
        common = {k: v for k, v in common.items() if alert["labels"].get(k) == v}
    return {
        "version": "4",
        "groupKey": incident.get("group_key") or "{}:{}",
        "status": "firing",
        "receiver": "opsagent",
        "truncatedAlerts": 0,
        "groupLabels": {"system": common.get("system", "shop")},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": _AM,
        "alerts": [
            {
                "status": "firing",
                "labels": a["labels"],
                "annotations": a["annotations"],
                "startsAt": a["starts_at"],
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": a.get("generator_url", ""),
                "fingerprint": a["fingerprint"],
            }
            for a in alerts
        ],
    }


def opsagent(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        stack.opsagent_command(*args),
        cwd=stack.opsagent_home(),
        env={**os.environ, **stack.opsagent_env()},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def fault_types() -> set[str]:
    """The fault types the opsagent under test knows (a truth it does not know cannot be recorded)."""
    done = subprocess.run(
        [
            stack.PYTHON,
            "-c",
            "from opsagent.domain import FaultType; print(' '.join(f.value for f in FaultType))",
        ],
        cwd=stack.opsagent_home(),
        env={**os.environ, **stack.opsagent_env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return set(done.stdout.split()) - {"unknown"}


def run_one(
    lab: Lab, fault: inject.Fault, case: Case, cap: float, cases_dir: Path, known_types: set[str]
) -> None:
    sent: dict[tuple[str, int], dict[str, Any]] = {}
    t0 = inject.start(fault)
    case.injected_at = round(t0, 1)
    holder = None
    state = inject.current()
    if state is not None:
        holder = state.get("holder_pid")
    _log(f"injected {fault.kind} on {fault.target} (magnitude {fault.magnitude:g})")
    found: dict[str, Any] | None = None
    incident: dict[str, Any] | None = None
    try:
        deadline = t0 + cap
        while time.time() < deadline and found is None:
            time.sleep(2)
            try:
                for alert in lab.active_alerts():
                    if (_ts(alert["startsAt"]) or 0) >= t0 - 1:
                        sent.setdefault(_key(alert["fingerprint"], alert["startsAt"]), alert)
                for item in lab.incidents_since(t0):
                    detail = lab.incident(item["id"])
                    done = [
                        inv
                        for inv in detail["investigations"]
                        if (_ts(inv["created_at"]) or 0) >= t0 and inv["status"] in ("done", "failed")
                    ]
                    if done:
                        found, incident = min(done, key=lambda i: _ts(i["finished_at"]) or math.inf), detail
                        break
            except httpx.HTTPError as exc:
                _log(f"  lab API: {exc.__class__.__name__}")
        if found is None or incident is None:
            case.error = "no alert" if not sent else "no finished investigation"
            _log(f"  {case.error} within {cap:.0f}s")
            return
        finished = _ts(found["finished_at"]) or time.time()
        episode = [a for a in incident["alerts"] if (_ts(a["received_at"]) or 0) >= t0 - 1]
        seen_by_first = [
            a for a in episode if (_ts(a["received_at"]) or 0) <= (_ts(found["created_at"]) or 0) + 1
        ]
        first_fired = min((_ts(a["starts_at"]) or math.inf) for a in seen_by_first or episode)
        first_received = min((_ts(a["received_at"]) or math.inf) for a in seen_by_first or episode)
        findings = incident.get("findings") or {}
        ranking = list(findings.get("ranking") or [])
        causes = findings.get("root_causes") or []
        case.incident_id, case.investigation_id = incident["id"], found["id"]
        case.top = found.get("top_service") or (ranking[0] if ranking else None)
        case.top_fault_type = found.get("top_fault") or (causes[0]["fault_type"] if causes else None)
        case.ranking = ranking[:5]
        onsets = [e["onset"] for e in (causes[0].get("evidence") or []) if e.get("onset")] if causes else []
        if onsets:
            case.top_evidence_lead_s = round(t0 - min(onsets), 1)
        case.rank_of_truth = ranking.index(fault.target) + 1 if fault.target in ranking else None
        case.episode = incident.get("episode")
        case.reopened = (case.episode or 1) > 1
        began = quiet_start(incident.get("gaps") or [])
        if began is not None:
            case.normal_after_quiet_s = round(first_fired - began, 1)
        case.fault_to_alert_s = round(first_fired - t0, 1)
        case.alert_to_findings_s = round(finished - first_fired, 1)
        case.webhook_to_findings_s = round(finished - first_received, 1)
        case.investigation_seconds = found.get("seconds")
        case.alertnames = sorted({f"{a['name']}:{a['labels'].get('service', '')}" for a in seen_by_first})
        if found["status"] == "failed":
            case.error = f"investigation failed: {found.get('error')}"
        _log(
            f"  alert after {case.fault_to_alert_s:.0f}s ({', '.join(case.alertnames)}); findings "
            f"{case.alert_to_findings_s:.1f}s later: top {case.top} ({case.top_fault_type}), truth rank {case.rank_of_truth}"
        )
        # The recording starts where the live investigation's window did, so the replay sees what it saw.
        before = None if began is None else first_fired - began
        case.recorded = record(
            incident, seen_by_first or episode, fault, case, cases_dir, known_types, before=before
        )
        final(lab, incident["id"], t0, fault, case)
    finally:
        inject.clear(fault, holder)
        case.cleared_at = round(time.time(), 1)
        _log(f"  cleared {fault.kind} on {fault.target}")
        case.alerts_sent = len(sent)
        case._sent = sent  # type: ignore[attr-defined]


def final(lab: Lab, incident_id: str, t0: float, fault: inject.Fault, case: Case) -> None:
    try:
        detail = lab.incident(incident_id)
    except httpx.HTTPError:
        return
    done = [
        i for i in detail["investigations"] if (_ts(i["created_at"]) or 0) >= t0 and i["status"] == "done"
    ]
    if not done:
        return
    latest = max(done, key=lambda i: _ts(i["finished_at"]) or 0)
    ranking = list((detail.get("findings") or {}).get("ranking") or [])
    case.top_final = latest.get("top_service") or (ranking[0] if ranking else None)
    case.rank_final = ranking.index(fault.target) + 1 if fault.target in ranking else None


def record(
    incident: dict[str, Any],
    alerts: list[dict[str, Any]],
    fault: inject.Fault,
    case: Case,
    cases_dir: Path,
    known_types: set[str],
    *,
    before: float | None = None,
) -> str | None:
    folder = cases_dir / f"{len(list(cases_dir.glob('*'))) + 1:02d}-{fault.kind}-{fault.target}"
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(_payload(incident, alerts), fh)
        payload = fh.name
    args = [
        "record",
        "--alert",
        payload,
        "--out",
        str(folder),
        "--root-cause",
        fault.target,
        "--topology",
        str(stack.CONF_SRC / "topology.yaml"),
    ]
    if before is not None:
        args += ["--before", f"{before:.3f}s"]
    if fault.fault_type in known_types:
        args += ["--fault-type", fault.fault_type]
    try:
        done = opsagent(*args)
    finally:
        Path(payload).unlink(missing_ok=True)
    if done.returncode != 0:
        _log(f"  record failed: {(done.stderr or done.stdout).strip()[-300:]}")
        return None
    return str(folder)


def count_received(lab: Lab, since: float, sent: dict[tuple[str, int], dict[str, Any]]) -> int:
    """How many of the alerts Alertmanager held since ``since`` opsagent stored (firing or resolved)."""
    stored: set[tuple[str, int]] = set()
    for item in lab.incidents_since(since):
        for alert in lab.incident(item["id"])["alerts"]:
            stored.add(_key(alert["fingerprint"], alert["starts_at"]))
    return sum(1 for key in sent if key in stored)


def replay(cases: list[Case], cases_dir: Path) -> dict[str, Any]:
    """``opsagent eval`` over the recorded cases: the top each replay finds, against the live one."""
    recorded = [c for c in cases if c.recorded]
    if not recorded:
        return {"replayed": 0, "same_top": 0}
    out = cases_dir / "replay.json"
    done = opsagent("eval", str(cases_dir), "--json", str(out), timeout=1800)
    if done.returncode != 0 or not out.exists():
        return {"replayed": 0, "same_top": 0, "error": (done.stderr or done.stdout).strip()[-300:]}
    doc = json.loads(out.read_text())
    tops = {Path(str(c.get("id"))).name: (c.get("ranking") or [None])[0] for c in doc.get("cases", [])}
    same = 0
    for case in recorded:
        name = Path(str(case.recorded)).name
        case.replay_top = tops.get(name)
        same += case.replay_top == case.top
    return {"replayed": len(recorded), "same_top": same}


def summary(cases: list[Case], seed: int, replayed: dict[str, Any], started: float) -> dict[str, Any]:
    n = len(cases)
    ranks = [c.rank_of_truth for c in cases]
    latencies = sorted(c.alert_to_findings_s for c in cases if c.alert_to_findings_s is not None)
    to_alert = sorted(c.fault_to_alert_s for c in cases if c.fault_to_alert_s is not None)

    def share(hits: int) -> float:
        return round(hits / n, 4) if n else 0.0

    def median(values: list[float]) -> float | None:
        if not values:
            return None
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else round((values[mid - 1] + values[mid]) / 2, 2)

    return {
        "seed": seed,
        "opsagent_commit": stack.opsagent_commit(),
        "faults": n,
        "ac@1": share(sum(1 for r in ranks if r == 1)),
        "ac@3": share(sum(1 for r in ranks if r is not None and r <= 3)),
        "ac@1_final": share(sum(1 for c in cases if c.rank_final == 1)),
        "type": share(sum(1 for c in cases if c.top_fault_type == c.fault_type)),
        "alert_to_findings_p50_s": median(latencies),
        "fault_to_alert_p50_s": median(to_alert),
        "alerts_sent": sum(c.alerts_sent for c in cases),
        "alerts_received": sum(c.alerts_received for c in cases),
        "no_alert": sum(1 for c in cases if c.fault_to_alert_s is None),
        # Issue 22's comparison: new incidents against episodes of reopened ones.
        "by_episode": {
            name: {
                "n": len(group),
                "ac@1": round(sum(1 for c in group if c.rank_of_truth == 1) / len(group), 4),
                "ac@3": round(
                    sum(1 for c in group if c.rank_of_truth and c.rank_of_truth <= 3) / len(group), 4
                ),
                "type": round(sum(1 for c in group if c.top_fault_type == c.fault_type) / len(group), 4),
            }
            for name, group in (
                ("fresh", [c for c in cases if c.episode == 1]),
                ("reopened", [c for c in cases if (c.episode or 0) > 1]),
            )
            if group
        },
        "kinds": sorted({c.kind for c in cases}),
        "targets": sorted({c.target for c in cases}),
        "replay": replayed,
        "load1_mean": round(sum(c.load1 or 0 for c in cases) / n, 2) if n else None,
        "wall_seconds": round(time.time() - started, 1),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cases": [{k: v for k, v in asdict(c).items() if not k.startswith("_")} for c in cases],
    }


def merge(reports: list[str], out: str) -> None:
    """Campaigns run side by side in separate labs (``LAB_STATE``, ``LAB_BASE_PORT``), as one report.

    Faults must be far enough apart that an investigation does not take the previous fault for its
    own (docs/LAB.md); two labs halve the wall time of a campaign without bringing faults closer.
    """
    docs = [json.loads(Path(p).read_text()) for p in reports]
    fields = set(Case.__dataclass_fields__)
    cases = [Case(**{k: v for k, v in c.items() if k in fields}) for d in docs for c in d["cases"]]
    replayed = {
        "replayed": sum(d.get("replay", {}).get("replayed", 0) for d in docs),
        "same_top": sum(d.get("replay", {}).get("same_top", 0) for d in docs),
    }
    doc = summary(
        cases, docs[0].get("seed", 0), replayed, time.time() - sum(d.get("wall_seconds", 0) for d in docs)
    )
    doc["wall_seconds"] = max(d.get("wall_seconds", 0) for d in docs)
    doc["merged_from"] = [
        {"report": p, "opsagent_commit": d.get("opsagent_commit")} for p, d in zip(reports, docs, strict=True)
    ]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(doc, indent=2) + "\n")
    print(
        f"{doc['faults']} faults: AC@1 {doc['ac@1']}, AC@3 {doc['ac@3']}, type {doc['type']}, alert->findings "
        f"p50 {doc['alert_to_findings_p50_s']}s, alerts {doc['alerts_received']}/{doc['alerts_sent']}, replay "
        f"same top {replayed['same_top']}/{replayed['replayed']} -> {out}"
    )


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM (and SIGINT, which a shell's background job ignores by default) end the campaign
    # through KeyboardInterrupt, so the fault in progress is cleared and the report is written.
    raise KeyboardInterrupt


def main(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    started = time.time()
    if not stack.is_up():
        _log("lab is not (fully) up: starting it")
        stack.up()
    lab = Lab()
    pairs = parse_only(args.only) if args.only else plan(args.seed, args.faults)
    part, _, parts = args.share.partition("/")
    if not (part.isdigit() and parts.isdigit() and 1 <= int(part) <= int(parts)):
        raise SystemExit(f"--share {args.share!r}: expected K/N with 1 <= K <= N")
    pairs = pairs[int(part) - 1 :: int(parts)]
    history = lab.history_seconds()
    if history < args.warmup:
        _log(
            f"the lab has {history:.0f}s of history; waiting {args.warmup - history:.0f}s for a normal period"
        )
        try:
            time.sleep(args.warmup - history)
        except KeyboardInterrupt:
            _log("interrupted during the warm-up: no fault was injected")
            return 1
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + f"-seed{args.seed}"
    cases_dir = (Path(args.cases) / run_id).resolve()
    cases_dir.mkdir(parents=True, exist_ok=True)
    known_types = fault_types()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    previous: float | None = None
    _log(f"campaign {run_id}: {len(pairs)} faults; cases in {cases_dir}")
    try:
        for number, (kind, target) in enumerate(pairs, start=1):
            fault = inject.Fault.of(kind, target, seconds=args.cap + 30)
            case = Case(kind, target, fault.magnitude, fault.fault_type)
            case.quiet_before = settled(lab, args.recovery, previous, 300.0)
            case.load1 = round(os.getloadavg()[0], 2)
            _log(f"[{number}/{len(pairs)}] {kind} -> {target} (load {case.load1})")
            since = time.time()
            previous = since
            try:
                run_one(lab, fault, case, args.cap, cases_dir, known_types)
            except (Exception, SystemExit) as exc:  # one broken fault must not end the campaign
                case.error = f"{exc.__class__.__name__}: {exc}"
                _log(f"  error: {case.error}")
                inject.clear_all()
            cases.append(case)
            # Alerts sent for this fault are counted as received once the shop has recovered: by then
            # Alertmanager has delivered each of them (firing or resolved).
            quiet(lab, 0.0, 180.0)
            sent = getattr(case, "_sent", {})
            try:
                case.alerts_received = count_received(lab, since, sent)
            except httpx.HTTPError:
                case.alerts_received = 0
            _log(f"  alerts sent {case.alerts_sent}, received {case.alerts_received}")
            out.write_text(json.dumps(summary(cases, args.seed, {}, started), indent=2) + "\n")
    except KeyboardInterrupt:
        # Stopped (SIGTERM/SIGINT): the fault in progress was cleared by run_one; keep what was measured.
        inject.clear_all()
        out.write_text(json.dumps(summary(cases, args.seed, {"interrupted": True}, started), indent=2) + "\n")
        _log(f"interrupted after {len(cases)} faults -> {out}")
        return 1
    replayed = replay(cases, cases_dir)
    doc = summary(cases, args.seed, replayed, started)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    _log(
        f"done: {doc['faults']} faults, AC@1 {doc['ac@1']}, AC@3 {doc['ac@3']}, type {doc['type']}, "
        f"alert->findings p50 {doc['alert_to_findings_p50_s']}s, alerts {doc['alerts_received']}/{doc['alerts_sent']}, "
        f"replay same top {replayed.get('same_top')}/{replayed.get('replayed')} -> {out}"
    )
    return 0
