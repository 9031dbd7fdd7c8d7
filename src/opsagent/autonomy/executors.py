"""Executors: the only code that changes anything outside opsagent.

Each executor runs one catalogued, schema-validated action (``ActionSpec`` + ``ProposedAction``) and
returns an ``ExecutionResult``. A run that happened but failed (non-zero exit, HTTP 5xx) is a result with
``ok=False``; a run that was refused or could not reach its target raises ``ExecutorError``. Nothing here
decides *whether* to run: that is ``policy.decide()`` and the runner's job.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, Field, JsonValue

from opsagent.autonomy.policy import TargetState
from opsagent.autonomy.target import UNRESOLVED
from opsagent.config import AutonomySettings, HttpExecutorSettings, KubernetesExecutorSettings
from opsagent.domain import ActionSpec, ActionTarget, ProposedAction
from opsagent.errors import ExecutorError

_MAX_OUTPUT = 8_000
# Action ids name files and URL segments: nothing that could climb out of a folder or a path.
_SAFE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# Script arguments go through execve, never a shell, but a script may hand them to one: refuse every
# character a shell, a glob or an option parser would give meaning to.
_UNSAFE_ARG = re.compile(r"[;&|`$<>(){}\[\]*?!~#'\"\\\s\x00]")


class ExecutionResult(BaseModel):
    """What happened when an executor ran an action."""

    ok: bool
    summary: str
    output: str = ""
    detail: dict[str, JsonValue] = Field(default_factory=dict)


class Executor(Protocol):
    def run(self, spec: ActionSpec, action: ProposedAction, *, request_id: str) -> ExecutionResult: ...


class TargetInspector(Protocol):
    """How many replicas the target has and how many are being acted on now (blast-radius input)."""

    def target_state(self, target: ActionTarget) -> TargetState: ...


class UnknownTargets:
    """The inspector when nothing can be asked: replica counts unknown, only the service caps apply."""

    def target_state(self, target: ActionTarget) -> TargetState:
        return TargetState()


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_OUTPUT else text[:_MAX_OUTPUT] + "\n…[truncated]"


def _check_id(action_id: str) -> None:
    if not _SAFE_ID.match(action_id):
        raise ExecutorError(f"action id {action_id!r} is not a safe name")


def check_target(action: ProposedAction) -> None:
    """Refuse to touch anything the catalogue did not resolve, or resolved to another service.

    The gate already denies such actions; this is the last line, in the only code that changes things.
    """
    resolved = action.resolved
    if resolved is None or resolved.kind == UNRESOLVED:
        raise ExecutorError(f"{action.action_id}: its target was not resolved, so it is not run")
    if resolved.conflict:
        raise ExecutorError(f"{action.action_id}: target mismatch ({resolved.conflict}), so it is not run")


# --------------------------------------------------------------------------------------------- http


class HttpExecutor:
    """POST the action to an automation endpoint (AWX, Rundeck, StackStorm) with auth and a timeout."""

    def __init__(self, settings: HttpExecutorSettings, client: httpx.Client | None = None) -> None:
        self._settings = settings
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(settings.timeout_seconds), verify=settings.verify_tls
        )

    def close(self) -> None:
        self._client.close()

    def _url(self, action_id: str) -> str:
        route = self._settings.routes.get(action_id)
        if route:
            return route
        if not self._settings.url:
            raise ExecutorError("no http executor endpoint configured (OPSAGENT_AUTONOMY__HTTP__URL)")
        return f"{self._settings.url.rstrip('/')}/{action_id}"

    def run(self, spec: ActionSpec, action: ProposedAction, *, request_id: str) -> ExecutionResult:
        _check_id(action.action_id)
        check_target(action)
        headers = {"Idempotency-Key": request_id, "User-Agent": "opsagent"}
        if self._settings.token is not None:
            scheme = f"{self._settings.auth_scheme} " if self._settings.auth_scheme else ""
            headers[self._settings.auth_header] = scheme + self._settings.token.get_secret_value()
        body: dict[str, JsonValue] = {
            "action": action.action_id,
            "request_id": request_id,
            "risk": action.risk.value,
            "target": {"service": action.target.service, "namespace": action.target.namespace},
            "resolved": action.resolved.model_dump(mode="json") if action.resolved else None,
            "params": action.params,
        }
        url = self._url(action.action_id)
        try:
            response = self._client.post(url, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ExecutorError(f"http executor: {action.action_id} timed out") from exc
        except httpx.HTTPError as exc:
            raise ExecutorError(f"http executor: {action.action_id}: {type(exc).__name__}") from exc
        ok = response.is_success
        return ExecutionResult(
            ok=ok,
            summary=f"POST {url} -> HTTP {response.status_code}",
            output=_truncate(response.text),
            detail={"status": response.status_code},
        )


# ------------------------------------------------------------------------------------------- script


def script_argv(script: Path, params: Mapping[str, JsonValue]) -> list[str]:
    """``[script, --name, value, ...]``; refuses values a shell or option parser could misread."""
    argv = [str(script)]
    for name in sorted(params):
        value = params[name]
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ExecutorError(f"parameter name {name!r} is not allowed on a command line")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float | str):
            text = str(value)
        else:
            raise ExecutorError(f"parameter {name!r}: only scalar values can be passed to a script")
        if not text or text.startswith("-") or _UNSAFE_ARG.search(text) or ".." in text:
            raise ExecutorError(
                f"parameter {name!r} has characters that are not allowed in a script argument"
            )
        argv += [f"--{name.replace('_', '-')}", text]
    return argv


class ScriptExecutor:
    """Run ``<script_dir>/<action id>[.sh|.py]`` with an argv list: no shell, a timeout, output captured."""

    def __init__(self, script_dir: Path, timeout_seconds: float) -> None:
        self._dir = script_dir.resolve()
        self._timeout = timeout_seconds

    def resolve(self, action_id: str) -> Path:
        """The script for ``action_id``; it must be a regular executable file inside the folder."""
        _check_id(action_id)
        for name in (action_id, f"{action_id}.sh", f"{action_id}.py"):
            candidate = self._dir / name
            if not candidate.exists():
                continue
            # resolve() follows symlinks: a link pointing outside the folder is refused here.
            real = candidate.resolve()
            if not real.is_relative_to(self._dir):
                raise ExecutorError(f"script for {action_id!r} resolves outside {self._dir}")
            if not real.is_file() or not os.access(real, os.X_OK):
                raise ExecutorError(f"script for {action_id!r} is not an executable file")
            return real
        raise ExecutorError(f"no script for {action_id!r} in {self._dir}")

    def run(self, spec: ActionSpec, action: ProposedAction, *, request_id: str) -> ExecutionResult:
        check_target(action)
        script = self.resolve(action.action_id)
        argv = script_argv(script, action.params)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "OPSAGENT_REQUEST_ID": request_id,
            "OPSAGENT_ACTION": action.action_id,
        }
        try:
            # A new session so a timeout kills the script's children too, not only the script.
            proc = subprocess.Popen(
                argv,
                cwd=self._dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                shell=False,
            )
        except OSError as exc:
            raise ExecutorError(f"script {script.name} could not start: {exc.strerror}") from exc
        try:
            out, _ = proc.communicate(timeout=self._timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            return ExecutionResult(
                ok=False,
                summary=f"{script.name} killed after {self._timeout:g}s",
                output=_truncate(out.decode(errors="replace")),
                detail={"timeout": True},
            )
        return ExecutionResult(
            ok=proc.returncode == 0,
            summary=f"{script.name} exited {proc.returncode}",
            output=_truncate(out.decode(errors="replace")),
            detail={"exit_code": proc.returncode},
        )


# --------------------------------------------------------------------------------------- kubernetes

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


# ----------------------------------------------------------------------------------------- registry


class Executors:
    """The executor for each ``ActionSpec.executor`` kind; kinds without one cannot run."""

    def __init__(self, by_kind: Mapping[str, Executor], inspector: TargetInspector | None = None) -> None:
        self._by_kind = dict(by_kind)
        self.inspector: TargetInspector = inspector or UnknownTargets()

    def for_spec(self, spec: ActionSpec) -> Executor:
        executor = self._by_kind.get(spec.executor)
        if executor is None:
            raise ExecutorError(f"no {spec.executor!r} executor is configured for {spec.id!r}")
        return executor

    @classmethod
    def from_settings(cls, policy: AutonomySettings) -> Executors:
        """Script always (the folder decides what exists); http and kubernetes when configured."""
        by_kind: dict[str, Executor] = {
            "script": ScriptExecutor(policy.script_dir, policy.script_timeout_seconds)
        }
        inspector: TargetInspector | None = None
        if policy.http.url or policy.http.routes:
            by_kind["http"] = HttpExecutor(policy.http)
        if policy.kubernetes.api_url:
            kube = KubernetesExecutor(policy.kubernetes)
            by_kind["kubernetes"] = kube
            inspector = kube
        return cls(by_kind, inspector)
