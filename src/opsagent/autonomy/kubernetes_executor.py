"""The Kubernetes executor: rollout restart, scale within bounds, rollout undo and a few one-field
patches of the resolved target, through the API server with a bearer token (never a kubeconfig)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import JsonValue

from opsagent.autonomy.executor_base import ExecutionResult, check_target
from opsagent.autonomy.policy import TargetState
from opsagent.config import KubernetesExecutorSettings
from opsagent.domain import ActionSpec, ActionTarget, ProposedAction
from opsagent.errors import ExecutorError

_REVISION = "deployment.kubernetes.io/revision"


class KubernetesExecutor:
    """Rollout restart, scale within bounds, rollout undo (and a few one-field patches) via the official client.

    Talks to ``api_url`` with a bearer token; it never reads a kubeconfig, so what it can reach is
    exactly what the configured service account may do.
    """

    def __init__(self, settings: KubernetesExecutorSettings) -> None:
        from kubernetes import client as k8s

        if not settings.api_url:
            raise ExecutorError(
                "no Kubernetes API server configured (OPSAGENT_AUTONOMY__KUBERNETES__API_URL)"
            )
        config = k8s.Configuration(host=settings.api_url.rstrip("/"))
        if settings.token is not None:
            config.api_key = {"authorization": settings.token.get_secret_value()}
            config.api_key_prefix = {"authorization": "Bearer"}
        config.verify_ssl = settings.verify_tls
        if settings.ca_file is not None:
            config.ssl_ca_cert = str(settings.ca_file)
        self._settings = settings
        self._api: Any = k8s.ApiClient(config)
        self._apps = k8s.AppsV1Api(self._api)
        self._core = k8s.CoreV1Api(self._api)
        self._batch = k8s.BatchV1Api(self._api)
        self._autoscaling = k8s.AutoscalingV2Api(self._api)
        self._api_exception: type[Exception] = k8s.ApiException
        self._ops = {
            "restart-deployment": self._restart,
            "restart-consumer-group": self._restart,
            "scale-deployment": self._scale,
            "rollback-deployment": self._undo,
            "delete-pod": self._delete_pod,
            "cordon-node": lambda p: self._set_unschedulable(p, True),
            "uncordon-node": lambda p: self._set_unschedulable(p, False),
            "suspend-cronjob": self._suspend_cronjob,
            "set-hpa-max-replicas": self._hpa_max,
        }

    def close(self) -> None:
        self._api.close()

    @property
    def operations(self) -> list[str]:
        return sorted(self._ops)

    def _kw(self) -> dict[str, Any]:
        return {"_request_timeout": self._settings.timeout_seconds}

    def run(self, spec: ActionSpec, action: ProposedAction, *, request_id: str) -> ExecutionResult:
        op = self._ops.get(action.action_id)
        if op is None:
            raise ExecutorError(f"the kubernetes executor does not implement {action.action_id!r}")
        check_target(action)
        try:
            summary = op(action.params)
        except self._api_exception as exc:
            status = getattr(exc, "status", None)
            reason = getattr(exc, "reason", None) or "error"
            return ExecutionResult(
                ok=False,
                summary=f"{action.action_id}: Kubernetes API answered {status} {reason}",
                detail={"status": status if isinstance(status, int) else None},
            )
        except (OSError, ValueError) as exc:
            # urllib3 connection errors are OSErrors; a malformed answer surfaces as ValueError.
            raise ExecutorError(f"kubernetes executor: {action.action_id}: {type(exc).__name__}") from exc
        return ExecutionResult(ok=True, summary=summary)

    @staticmethod
    def _str(params: Mapping[str, JsonValue], name: str) -> str:
        value = params.get(name)
        if not isinstance(value, str) or not value:
            raise ExecutorError(f"parameter {name!r} is required")
        return value

    def _restart(self, params: Mapping[str, JsonValue]) -> str:
        ns, name = self._str(params, "namespace"), self._str(params, "deployment")
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # What `kubectl rollout restart` does: a new pod-template annotation triggers a rolling update.
        body = {
            "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}}
        }
        self._apps.patch_namespaced_deployment(
            name, ns, body, _content_type="application/strategic-merge-patch+json", **self._kw()
        )
        return f"rollout restart of deployment {ns}/{name}"

    def _scale(self, params: Mapping[str, JsonValue]) -> str:
        ns, name = self._str(params, "namespace"), self._str(params, "deployment")
        replicas = params.get("replicas")
        lo, hi = self._settings.min_replicas, self._settings.max_replicas
        if not isinstance(replicas, int) or isinstance(replicas, bool) or not lo <= replicas <= hi:
            raise ExecutorError(f"replicas must be an integer between {lo} and {hi}")
        self._apps.patch_namespaced_deployment_scale(
            name,
            ns,
            {"spec": {"replicas": replicas}},
            _content_type="application/merge-patch+json",
            **self._kw(),
        )
        return f"scaled deployment {ns}/{name} to {replicas} replicas"

    def _undo(self, params: Mapping[str, JsonValue]) -> str:
        """``kubectl rollout undo``: copy the pod template of an older ReplicaSet back into the deployment."""
        ns, name = self._str(params, "namespace"), self._str(params, "deployment")
        wanted = params.get("to_revision")
        dep = self._api.sanitize_for_serialization(
            self._apps.read_namespaced_deployment(name, ns, **self._kw())
        )
        uid = dep["metadata"].get("uid")
        labels = dep["spec"]["selector"].get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        listing = self._api.sanitize_for_serialization(
            self._apps.list_namespaced_replica_set(ns, label_selector=selector, **self._kw())
        )
        by_revision: dict[int, dict[str, Any]] = {}
        for rs in listing.get("items", []):
            meta = rs.get("metadata", {})
            owners = meta.get("ownerReferences") or []
            revision = (meta.get("annotations") or {}).get(_REVISION)
            if revision and any(o.get("uid") == uid for o in owners):
                by_revision[int(revision)] = rs
        current = int((dep["metadata"].get("annotations") or {}).get(_REVISION, max(by_revision, default=0)))
        if isinstance(wanted, int) and not isinstance(wanted, bool):
            target = wanted
        else:
            older = [r for r in by_revision if r < current]
            if not older:
                raise ExecutorError(f"deployment {ns}/{name} has no earlier revision to roll back to")
            target = max(older)
        if target not in by_revision:
            raise ExecutorError(f"deployment {ns}/{name} has no revision {target}")
        template = by_revision[target]["spec"]["template"]
        (template.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
        patch = [{"op": "replace", "path": "/spec/template", "value": template}]
        self._apps.patch_namespaced_deployment(
            name, ns, patch, _content_type="application/json-patch+json", **self._kw()
        )
        return f"rolled deployment {ns}/{name} back from revision {current} to {target}"

    def _delete_pod(self, params: Mapping[str, JsonValue]) -> str:
        ns, pod = self._str(params, "namespace"), self._str(params, "pod")
        self._core.delete_namespaced_pod(pod, ns, **self._kw())
        return f"deleted pod {ns}/{pod}"

    def _set_unschedulable(self, params: Mapping[str, JsonValue], value: bool) -> str:
        node = self._str(params, "node")
        self._core.patch_node(
            node,
            {"spec": {"unschedulable": value}},
            _content_type="application/strategic-merge-patch+json",
            **self._kw(),
        )
        return f"{'cordoned' if value else 'uncordoned'} node {node}"

    def _suspend_cronjob(self, params: Mapping[str, JsonValue]) -> str:
        ns, name = self._str(params, "namespace"), self._str(params, "cronjob")
        suspend = params.get("suspend")
        if not isinstance(suspend, bool):
            raise ExecutorError("parameter 'suspend' must be true or false")
        self._batch.patch_namespaced_cron_job(
            name,
            ns,
            {"spec": {"suspend": suspend}},
            _content_type="application/merge-patch+json",
            **self._kw(),
        )
        return f"{'suspended' if suspend else 'resumed'} cronjob {ns}/{name}"

    def _hpa_max(self, params: Mapping[str, JsonValue]) -> str:
        ns, name = self._str(params, "namespace"), self._str(params, "hpa")
        value = params.get("max_replicas")
        hi = self._settings.max_replicas
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= hi:
            raise ExecutorError(f"max_replicas must be an integer between 1 and {hi}")
        self._autoscaling.patch_namespaced_horizontal_pod_autoscaler(
            name,
            ns,
            {"spec": {"maxReplicas": value}},
            _content_type="application/merge-patch+json",
            **self._kw(),
        )
        return f"set maxReplicas of hpa {ns}/{name} to {value}"

    def target_state(self, target: ActionTarget) -> TargetState:
        """Replicas of the deployment named like the service, and how many are not available/updated."""
        try:
            dep = self._api.sanitize_for_serialization(
                self._apps.read_namespaced_deployment(
                    target.service, target.namespace or "default", **self._kw()
                )
            )
        except (self._api_exception, OSError, ValueError):
            return TargetState()
        spec_replicas = int(dep.get("spec", {}).get("replicas") or 0)
        status = dep.get("status") or {}
        unavailable = int(status.get("unavailableReplicas") or 0)
        updated = int(status.get("updatedReplicas") or spec_replicas)
        # A rollout in progress touches every replica not yet updated.
        busy = max(unavailable, spec_replicas - updated)
        return TargetState(replicas=spec_replicas or None, replicas_acted_on=max(0, busy))
