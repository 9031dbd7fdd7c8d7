"""One end-to-end run per level on the same demo incident, and verification/rollback on a real Prometheus.

The demo incident (examples/incidents/memory-leak-oom) goes through the real pipeline; its runbook
proposes collect-diagnostics (read), restart-deployment (low) and rollback-deployment (medium), and an
LLM-style proposal adds increase-memory-limit (high). The recording target tells which actually ran.
"""

from pathlib import Path

import pytest

from opsagent.autonomy.approvals import ActionStatus
from opsagent.autonomy.audit import InMemoryAuditLog
from opsagent.autonomy.catalog import ActionCatalog
from opsagent.autonomy.runner import ActionRunner, RunnerParts, proposal
from opsagent.autonomy.verify import PrometheusVerifier
from opsagent.commands.investigate import investigate_recorded
from opsagent.config import PrometheusSettings, Settings
from opsagent.domain import ActionSpec, AutonomyLevel, Risk, VerifySpec

from .conftest import REPO, Prometheus, Target, add_deployment
from .helpers import Escalations, executors_for, make_runner, policy

L = AutonomyLevel
INCIDENT = REPO / "examples" / "incidents" / "memory-leak-oom"
BIGGER = {"namespace": "shop", "kind": "deployment", "workload": "cart", "container": "cart", "memory": "1Gi"}


def healthy(target: Target) -> None:
    """cart looks healthy to Prometheus: no 5xx, all replicas available, no restarts."""
    add_deployment(target, "cart", replicas=3)
    target.counters.update(
        {
            'http_requests_total{service="cart",code="200"}': 50,
            'http_requests_total{service="cart",code="500"}': 0,
        }
    )
    target.gauges.update(
        {
            'kube_deployment_status_replicas_available{namespace="shop",deployment="cart"}': 3,
            'kube_deployment_spec_replicas{namespace="shop",deployment="cart"}': 3,
            'kube_pod_container_status_restarts_total{namespace="shop",pod="cart-7d9f-abcde"}': 4,
        }
    )


@pytest.fixture(scope="module")
def investigations(tmp_path_factory) -> dict:
    """The pipeline's investigation of the demo incident at every level (the pipeline is level-aware too)."""
    data = tmp_path_factory.mktemp("data")
    out = {}
    for level in L:
        settings = Settings(
            data_dir=Path(data), embedding="hashing", autonomy_level=level, runbooks_dir=REPO / "runbooks"
        )
        out[level] = investigate_recorded(INCIDENT, settings, "offline")
    return out


EXPECTED_RUN = {
    L.L0: [],
    L.L1: [],
    L.L2: [],
    L.L3: ["restart-deployment"],
    L.L4: ["restart-deployment", "rollback-deployment"],
    L.L5: ["restart-deployment", "rollback-deployment", "increase-memory-limit"],
}
EXPECTED_STATUS = {
    # collect-diagnostics, restart (low), rollback (medium), increase-memory-limit (high)
    L.L0: ["not_proposed"] * 4,  # analysed when a person asks (issue 21), nothing proposed
    L.L1: ["succeeded", "not_proposed", "not_proposed", "not_proposed"],
    L.L2: ["succeeded", "pending", "pending", "pending"],
    L.L3: ["succeeded", "succeeded", "pending", "pending"],
    L.L4: ["succeeded", "succeeded", "succeeded", "pending"],
    L.L5: ["succeeded", "succeeded", "succeeded", "succeeded"],
}


@pytest.mark.integration
@pytest.mark.parametrize("level", list(L))
def test_each_level_on_the_demo_incident(level, investigations, target: Target, prometheus: Prometheus):
    healthy(target)
    prometheus.wait_for("increase(kube_pod_container_status_restarts_total[15m])")
    prometheus.wait_for('rate(http_requests_total{code="200"}[5m])')
    inv = investigations[level]
    verifier = PrometheusVerifier(
        PrometheusSettings(url=prometheus.url), poll_seconds=0.5, max_wait_seconds=15
    )
    # Up to three changes in this one incident at L4/L5: the levels are under test, not the cap.
    runner, _, esc = make_runner(target, level, policy(max_automatic_per_incident=3), verifier=verifier)
    by_action = {r.action.action_id: r for r in runner.process(inv)}
    high = runner.handle(
        inv.incident.id,
        proposal("increase-memory-limit", "cart", BIGGER, namespace="shop"),
        1.0,
        source="llm",
    )
    by_action[high.action.action_id] = high
    order = ["collect-diagnostics", "restart-deployment", "rollback-deployment", "increase-memory-limit"]
    got = [by_action[a].status.value if a in by_action else None for a in order]
    assert got == EXPECTED_STATUS[level]
    assert target.ran() == EXPECTED_RUN[level]
    # L4 and L5 verified each automatic change against Prometheus before calling it done.
    verified = [
        e.request_id for e in runner.audit.entries() if e.kind == "verification" and e.outcome == "passed"
    ]
    automatic = [r.id for r in by_action.values() if r.automatic and r.action.risk is not Risk.READ]
    assert sorted(verified) == (sorted(automatic) if level.rank >= 4 else [])
    assert esc.seen == []


@pytest.mark.integration
def test_failed_verification_rolls_back_and_escalates(target: Target, prometheus: Prometheus):
    target.gauges['demo_node_ready{node="node-1"}'] = 0
    prometheus.wait_for("demo_node_ready")
    node = {
        "type": "object",
        "properties": {"node": {"type": "string", "pattern": "^[a-z0-9-]+$"}},
        "required": ["node"],
        "additionalProperties": False,
    }
    catalog = ActionCatalog(
        [
            ActionSpec(
                id="cordon-node",
                risk=Risk.MEDIUM,
                executor="kubernetes",
                params=node,
                verify=VerifySpec(promql='demo_node_ready{node="{node}"} == 1', wait="3s"),
                rollback="uncordon-node",
            ),
            ActionSpec(id="uncordon-node", risk=Risk.LOW, executor="kubernetes", params=node),
        ]
    )
    audit, esc = InMemoryAuditLog(), Escalations()
    from opsagent.autonomy.killswitch import InMemoryKillSwitch
    from opsagent.autonomy.memory_store import InMemoryActionStore

    runner = ActionRunner(
        RunnerParts(
            level=L.L4,
            policy=policy(),
            catalog=catalog,
            executors=executors_for(target),
            store=InMemoryActionStore(),
            audit=audit,
            kill_switch=InMemoryKillSwitch(),
            verifier=PrometheusVerifier(PrometheusSettings(url=prometheus.url), poll_seconds=0.5),
            escalator=esc,
        )
    )
    req = runner.handle("inc-v", proposal("cordon-node", "node-1", {"node": "node-1"}, runbook_id="rb"), 0.9)
    assert req.status is ActionStatus.ROLLED_BACK
    patches = [(c.path, c.body) for c in target.writes()]
    assert patches == [
        ("/api/v1/nodes/node-1", {"spec": {"unschedulable": True}}),
        ("/api/v1/nodes/node-1", {"spec": {"unschedulable": False}}),
    ]
    kinds = [(e.kind, e.outcome) for e in audit.entries(request_id=req.id)]
    assert (
        ("verification", "failed") in kinds
        and ("rollback", "ok") in kinds
        and ("escalation", "escalated") in kinds
    )
    assert len(esc.seen) == 1 and "verification of cordon-node failed" in esc.seen[0][1]


@pytest.mark.integration
def test_verification_passes_once_the_condition_holds(target: Target, prometheus: Prometheus):
    target.gauges['demo_node_ready{node="node-2"}'] = 1
    prometheus.wait_for('demo_node_ready{node="node-2"} == 1')
    v = PrometheusVerifier(PrometheusSettings(url=prometheus.url), poll_seconds=0.5)
    from opsagent.domain import ActionTarget, ProposedAction

    action = ProposedAction(
        action_id="x", risk=Risk.LOW, target=ActionTarget(service="node-2"), params={"node": "node-2"}
    )
    ok = v.verify(VerifySpec(promql='demo_node_ready{node="{node}"} == 1', wait="5s"), action)
    assert ok.status == "passed" and ok.query == 'demo_node_ready{node="node-2"} == 1'
    bad = PrometheusVerifier(PrometheusSettings(url="http://127.0.0.1:9"), poll_seconds=0.1).verify(
        VerifySpec(promql="up", wait="0.3s"), action
    )
    assert bad.status == "unknown"
