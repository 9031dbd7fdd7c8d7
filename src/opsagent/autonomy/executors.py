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
from pathlib import Path

import httpx
from pydantic import JsonValue

from opsagent.autonomy.executor_base import (
    ExecutionResult,
    Executor,
    TargetInspector,
    UnknownTargets,
    check_id,
    check_target,
    truncate,
)
from opsagent.autonomy.kubernetes_executor import KubernetesExecutor
from opsagent.config import AutonomySettings, HttpExecutorSettings
from opsagent.domain import ActionSpec, ProposedAction
from opsagent.errors import ExecutorError

# Script arguments go through execve, never a shell, but a script may hand them to one: refuse every
# character a shell, a glob or an option parser would give meaning to.
_UNSAFE_ARG = re.compile(r"[;&|`$<>(){}\[\]*?!~#'\"\\\s\x00]")

# The registry's face: executors by kind and what they share (``executor_base``).
__all__ = [
    "ExecutionResult",
    "Executor",
    "Executors",
    "HttpExecutor",
    "KubernetesExecutor",
    "ScriptExecutor",
    "TargetInspector",
    "UnknownTargets",
    "check_target",
    "script_argv",
]

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
        check_id(action.action_id)
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
            output=truncate(response.text),
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
        check_id(action_id)
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
                output=truncate(out.decode(errors="replace")),
                detail={"timeout": True},
            )
        return ExecutionResult(
            ok=proc.returncode == 0,
            summary=f"{script.name} exited {proc.returncode}",
            output=truncate(out.decode(errors="replace")),
            detail={"exit_code": proc.returncode},
        )


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
