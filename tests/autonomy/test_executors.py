"""Executors against real things: scripts in a real folder, a real HTTP endpoint, a local Kubernetes API."""

import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from opsagent.autonomy.catalog import ActionCatalog
from opsagent.autonomy.executors import HttpExecutor, KubernetesExecutor, ScriptExecutor, script_argv
from opsagent.config import HttpExecutorSettings, KubernetesExecutorSettings
from opsagent.domain import ActionSpec, ActionTarget, ProposedAction, ResolvedTarget, Risk
from opsagent.errors import ExecutorError
from opsagent.evidence.runbooks import load_runbooks

from .conftest import REPO, Target, add_deployment

SCRIPTS = REPO / "scripts" / "actions"


def proposed(action_id: str, params: dict, service: str = "orders", risk: Risk = Risk.LOW) -> ProposedAction:
    # Resolved as the catalogue would (the resolution itself is tested in the adversarial suite).
    return ProposedAction(
        action_id=action_id,
        risk=risk,
        target=ActionTarget(service=service, namespace="shop"),
        params=params,
        resolved=ResolvedTarget(kind="deployment", name=service, namespace="shop", service=service),
    )


def spec(action_id: str, executor: str = "script") -> ActionSpec:
    return ActionSpec(id=action_id, risk=Risk.LOW, executor=executor)  # type: ignore[arg-type]


# ------------------------------------------------------------------ scripts


def test_every_script_action_in_the_runbooks_has_a_safe_script():
    catalog = ActionCatalog.from_runbooks(load_runbooks(REPO / "runbooks"))
    runner = ScriptExecutor(SCRIPTS, timeout_seconds=10)
    script_actions = [s.id for s in catalog.specs() if s.executor == "script"]
    assert script_actions, "the runbooks declare script actions"
    for action_id in script_actions:
        path = runner.resolve(action_id)
        assert path.parent == SCRIPTS.resolve()


def test_collect_diagnostics_runs_for_real_and_captures_output():
    result = ScriptExecutor(SCRIPTS, 20).run(
        spec("collect-diagnostics"),
        proposed("collect-diagnostics", {"service": "orders", "namespace": "shop"}, risk=Risk.READ),
        request_id="req-1",
    )
    assert result.ok, result.output
    assert "diagnostics for shop/orders" in result.output and "request req-1" in result.output


def _script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_arguments_reach_the_script_as_argv_not_through_a_shell(tmp_path):
    _script(tmp_path, "echo-args", 'for a in "$@"; do echo "[$a]"; done\n')
    result = ScriptExecutor(tmp_path, 5).run(
        spec("echo-args"), proposed("echo-args", {"service": "orders", "replicas": 3}), request_id="r"
    )
    assert result.ok
    assert result.output.split() == ["[--replicas]", "[3]", "[--service]", "[orders]"]


@pytest.mark.parametrize(
    "value",
    [
        "orders; touch /tmp/pwned",
        "$(touch /tmp/pwned)",
        "`id`",
        "a|b",
        "a&&b",
        "a > /etc/passwd",
        "../../etc/passwd",
        "--exec=sh",
        "-rf",
        "x\ny",
        "a b",
        "*",
        "~root",
        "a'b",
        'a"b',
        "",
    ],
)
def test_shell_metacharacters_and_option_injection_are_refused(tmp_path, value):
    canary = tmp_path / "ran"
    _script(tmp_path, "act", f"touch {canary}\n")
    executor = ScriptExecutor(tmp_path, 5)
    with pytest.raises(ExecutorError, match="not allowed"):
        executor.run(spec("act"), proposed("act", {"service": value}), request_id="r")
    assert not canary.exists()


def test_non_scalar_params_are_refused():
    with pytest.raises(ExecutorError, match="scalar"):
        script_argv(Path("/x"), {"service": ["a", "b"]})


@pytest.mark.parametrize("action_id", ["../outside", "/bin/sh", "sub/dir", "..", "a;b", "UPPER", ".hidden"])
def test_action_ids_cannot_name_a_path(tmp_path, action_id):
    with pytest.raises(ExecutorError, match="not a safe name"):
        ScriptExecutor(tmp_path, 5).resolve(action_id)


def test_a_symlink_pointing_outside_the_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "actions"
    folder.mkdir()
    evil = _script(outside, "evil", f"touch {outside / 'ran'}\n")
    (folder / "evil").symlink_to(evil)
    with pytest.raises(ExecutorError, match="outside"):
        ScriptExecutor(folder, 5).run(spec("evil"), proposed("evil", {}), request_id="r")
    assert not (outside / "ran").exists()


def test_missing_or_non_executable_scripts_are_refused(tmp_path):
    (tmp_path / "plain").write_text("#!/bin/sh\necho hi\n")
    executor = ScriptExecutor(tmp_path, 5)
    with pytest.raises(ExecutorError, match="not an executable"):
        executor.resolve("plain")
    with pytest.raises(ExecutorError, match="no script"):
        executor.resolve("absent")


def test_timeout_kills_the_script_and_its_children(tmp_path):
    marker = tmp_path / "late"
    _script(tmp_path, "slow", f"(sleep 3; touch {marker}) &\nsleep 30\n")
    result = ScriptExecutor(tmp_path, 0.5).run(spec("slow"), proposed("slow", {}), request_id="r")
    assert not result.ok and "killed after" in result.summary
    import time

    time.sleep(3.5)
    assert not marker.exists(), "a child of the timed-out script survived"


def test_failing_script_is_a_failed_result(tmp_path):
    _script(tmp_path, "fails", "echo boom; exit 4\n")
    result = ScriptExecutor(tmp_path, 5).run(spec("fails"), proposed("fails", {}), request_id="r")
    assert not result.ok and result.detail["exit_code"] == 4 and "boom" in result.output


# ------------------------------------------------------------------ http


def test_http_executor_posts_with_auth_and_idempotency_key(target: Target):
    settings = HttpExecutorSettings(url=f"{target.url}/hooks", token=SecretStr("s3cret"))
    result = HttpExecutor(settings).run(
        spec("kill-idle-db-connections", "http"),
        proposed(
            "kill-idle-db-connections", {"cluster": "orders-db", "database": "orders", "idle_seconds": 600}
        ),
        request_id="req-42",
    )
    assert result.ok
    (call,) = target.writes()
    assert call.path == "/hooks/kill-idle-db-connections"
    assert call.headers["authorization"] == "Bearer s3cret"
    assert call.headers["idempotency-key"] == "req-42"
    assert call.body["params"] == {"cluster": "orders-db", "database": "orders", "idle_seconds": 600}
    assert call.body["target"] == {"service": "orders", "namespace": "shop"}


def test_http_executor_reports_errors_and_timeouts(target: Target):
    target.hook_status = 500
    settings = HttpExecutorSettings(url=f"{target.url}/hooks", timeout_seconds=0.5)
    result = HttpExecutor(settings).run(spec("x", "http"), proposed("x", {}), request_id="r")
    assert not result.ok and "HTTP 500" in result.summary
    target.hook_status, target.hook_delay = 200, 2.0
    with pytest.raises(ExecutorError, match="timed out"):
        HttpExecutor(settings).run(spec("x", "http"), proposed("x", {}), request_id="r")


def test_http_executor_needs_an_endpoint():
    with pytest.raises(ExecutorError, match="no http executor endpoint"):
        HttpExecutor(HttpExecutorSettings()).run(spec("x", "http"), proposed("x", {}), request_id="r")


# ------------------------------------------------------------------ kubernetes


def kube(target: Target, **kw) -> KubernetesExecutor:
    return KubernetesExecutor(
        KubernetesExecutorSettings(api_url=target.url, token=SecretStr("k8s-token"), timeout_seconds=5, **kw)
    )


def test_rollout_restart_patches_the_pod_template_annotation(target: Target):
    add_deployment(target, "orders")
    result = kube(target).run(
        spec("restart-deployment", "kubernetes"),
        proposed("restart-deployment", {"namespace": "shop", "deployment": "orders"}),
        request_id="r",
    )
    assert result.ok, result.summary
    (call,) = target.writes()
    assert call.method == "PATCH" and call.path == "/apis/apps/v1/namespaces/shop/deployments/orders"
    assert call.headers["content-type"] == "application/strategic-merge-patch+json"
    assert call.headers["authorization"] == "Bearer k8s-token"
    annotations = call.body["spec"]["template"]["metadata"]["annotations"]
    assert set(annotations) == {"kubectl.kubernetes.io/restartedAt"}


def test_scale_stays_within_bounds(target: Target):
    add_deployment(target, "orders")
    executor = kube(target, min_replicas=2, max_replicas=6)
    ok = executor.run(
        spec("scale-deployment", "kubernetes"),
        proposed("scale-deployment", {"namespace": "shop", "deployment": "orders", "replicas": 5}),
        request_id="r",
    )
    assert ok.ok, ok.summary
    (call,) = target.writes()
    assert call.path == "/apis/apps/v1/namespaces/shop/deployments/orders/scale"
    assert call.body == {"spec": {"replicas": 5}}
    for bad in (1, 7, 50):
        with pytest.raises(ExecutorError, match="between 2 and 6"):
            executor.run(
                spec("scale-deployment", "kubernetes"),
                proposed("scale-deployment", {"namespace": "shop", "deployment": "orders", "replicas": bad}),
                request_id="r",
            )
    assert len(target.writes()) == 1


def test_rollout_undo_restores_the_previous_revision_template(target: Target):
    add_deployment(target, "payment")
    result = kube(target).run(
        spec("rollback-deployment", "kubernetes"),
        proposed("rollback-deployment", {"namespace": "shop", "deployment": "payment"}, service="payment"),
        request_id="r",
    )
    assert result.ok, result.summary
    assert "from revision 3 to 2" in result.summary
    reads = [c.path for c in target.calls if c.method == "GET"]
    assert "/apis/apps/v1/namespaces/shop/deployments/payment" in reads
    assert any(
        p.startswith("/apis/apps/v1/namespaces/shop/replicasets?") and "labelSelector=app%3Dpayment" in p
        for p in reads
    )
    (call,) = target.writes()
    assert call.headers["content-type"] == "application/json-patch+json"
    (op,) = call.body
    assert op["op"] == "replace" and op["path"] == "/spec/template"
    assert op["value"]["spec"]["containers"][0]["image"] == "shop/payment:v2"
    assert "pod-template-hash" not in op["value"]["metadata"]["labels"]


def test_rollout_undo_to_an_explicit_revision_and_a_missing_one(target: Target):
    add_deployment(target, "payment")
    ex = kube(target)
    ok = ex.run(
        spec("rollback-deployment", "kubernetes"),
        proposed("rollback-deployment", {"namespace": "shop", "deployment": "payment", "to_revision": 1}),
        request_id="r",
    )
    assert (
        ok.ok and target.writes()[0].body[0]["value"]["spec"]["containers"][0]["image"] == "shop/payment:v1"
    )
    with pytest.raises(ExecutorError, match="no revision 9"):
        ex.run(
            spec("rollback-deployment", "kubernetes"),
            proposed("rollback-deployment", {"namespace": "shop", "deployment": "payment", "to_revision": 9}),
            request_id="r",
        )


def test_api_errors_become_failed_results_and_unknown_operations_are_refused(target: Target):
    result = kube(target).run(
        spec("restart-deployment", "kubernetes"),
        proposed("restart-deployment", {"namespace": "shop", "deployment": "ghost"}),
        request_id="r",
    )
    assert not result.ok and "404" in result.summary
    with pytest.raises(ExecutorError, match="does not implement"):
        kube(target).run(
            spec("drain-node", "kubernetes"), proposed("drain-node", {"node": "n1"}), request_id="r"
        )


def test_target_state_reads_replicas_for_the_blast_radius(target: Target):
    add_deployment(target, "orders", replicas=4)
    target.deployments["orders"]["status"].update({"unavailableReplicas": 1, "updatedReplicas": 2})
    state = kube(target).target_state(ActionTarget(service="orders", namespace="shop"))
    assert state.replicas == 4 and state.replicas_acted_on == 2
    assert kube(target).target_state(ActionTarget(service="ghost", namespace="shop")).replicas is None
