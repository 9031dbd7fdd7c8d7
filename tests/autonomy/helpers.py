"""Builds an ActionRunner on the real runbook catalogue, real scripts and the recording target."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import SecretStr

from opsagent.autonomy.approvals import ActionRequest, Approvals
from opsagent.autonomy.audit import InMemoryAuditLog
from opsagent.autonomy.catalog import ActionCatalog
from opsagent.autonomy.executors import Executors, HttpExecutor, KubernetesExecutor, ScriptExecutor
from opsagent.autonomy.killswitch import InMemoryKillSwitch
from opsagent.autonomy.memory_store import InMemoryActionStore
from opsagent.autonomy.runner import ActionRunner, RunnerParts
from opsagent.autonomy.verify import Verifier
from opsagent.config import AutonomySettings, HttpExecutorSettings, KubernetesExecutorSettings, PolicyRule
from opsagent.domain import AutonomyLevel
from opsagent.evidence.runbooks import load_runbooks

from .conftest import REPO, Target

CATALOG = ActionCatalog.from_runbooks(load_runbooks(REPO / "runbooks"))


@dataclass
class Escalations:
    seen: list[tuple[str, str]] = field(default_factory=list)

    def escalate(self, request: ActionRequest, reason: str) -> None:
        self.seen.append((request.id, reason))


def policy(**kw: object) -> AutonomySettings:
    # Every kind of target: these tests are about limits and levels, not about which kinds a rule names.
    base: dict[str, object] = {"rules": [PolicyRule(kinds=["*"])], "confidence_threshold": 0.7}
    base.update(kw)
    return AutonomySettings.model_validate(base)


def executors_for(target: Target) -> Executors:
    kube = KubernetesExecutor(
        KubernetesExecutorSettings(api_url=target.url, token=SecretStr("t"), timeout_seconds=5)
    )
    return Executors(
        {
            "http": HttpExecutor(
                HttpExecutorSettings(url=f"{target.url}/hooks", token=SecretStr("h"), timeout_seconds=5)
            ),
            "kubernetes": kube,
            "script": ScriptExecutor(REPO / "scripts" / "actions", 20),
        },
        inspector=kube,
    )


def make_runner(
    target: Target,
    level: AutonomyLevel,
    pol: AutonomySettings | None = None,
    *,
    store=None,
    audit=None,
    kill=None,
    verifier: Verifier | None = None,
) -> tuple[ActionRunner, Approvals, Escalations]:
    store = store if store is not None else InMemoryActionStore()
    audit = audit if audit is not None else InMemoryAuditLog()
    kill = kill if kill is not None else InMemoryKillSwitch()
    esc = Escalations()
    runner = ActionRunner(
        RunnerParts(
            level=level,
            policy=pol or policy(),
            catalog=CATALOG,
            executors=executors_for(target),
            store=store,
            audit=audit,
            kill_switch=kill,
            verifier=verifier,
            escalator=esc,
        )
    )
    return runner, Approvals(store, audit), esc
