"""One resolved target: what an action will actually touch, read from the parameters the executor uses.

The policy, the rate limits, the blast radius, maintenance windows, approvals and the audit log all
judge this target, never the service a proposal *says* it is about. A proposal for ``orders`` whose
parameters name ``kube-system/payments-db`` resolves to ``deployment/kube-system/payments-db``; that
is not ``orders``' deployment, so it carries a conflict and the gate refuses it.

How a target is found:

* a runbook may declare it (``target: {kind: database, name: cluster}``: the parameter ``cluster``
  names it, and ``namespace:`` names the parameter that holds its namespace, if any);
* otherwise the first parameter of the schema with a well-known name names it (``deployment``,
  ``pod``, ``node``, ...); its namespace is the ``namespace`` parameter when the schema has one;
* an action whose schema has none of these cannot be resolved, and is refused.

Which objects belong to a service: a deployment, statefulset, workload, HPA, cronjob or service
named exactly like it, and a pod whose name starts with ``<service>-``. Anything else (a node, a
database cluster, a feature flag) belongs to no one service: a policy rule must name its kind
(``kinds``) before it can run without approval.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import JsonValue

from opsagent.domain import ActionSpec, ActionTarget, ResolvedTarget

# Parameter name -> kind of object it names, in the order they are looked for.
_NAMING: tuple[tuple[str, str], ...] = (
    ("deployment", "deployment"),
    ("statefulset", "statefulset"),
    ("workload", "workload"),
    ("pod", "pod"),
    ("hpa", "hpa"),
    ("cronjob", "cronjob"),
    ("pvc", "pvc"),
    ("certificate", "certificate"),
    ("node", "node"),
    ("cluster", "cluster"),
    ("member", "etcd-member"),
    ("flag", "feature-flag"),
    ("route", "route"),
    ("service", "service"),
    ("app", "service"),
)
# Kinds of object that are the service itself when named like it.
OWNED_KINDS = frozenset({"deployment", "statefulset", "workload", "hpa", "cronjob", "service"})
# Kinds of object that belong to the service when their name starts with "<service>-".
PREFIXED_KINDS = frozenset({"pod"})
UNRESOLVED = "unresolved"


def _properties(spec: ActionSpec) -> Mapping[str, JsonValue]:
    props = spec.params.get("properties")
    return props if isinstance(props, dict) else {}


def _text(params: Mapping[str, JsonValue], name: str | None) -> str | None:
    if name is None:
        return None
    value = params.get(name)
    return value if isinstance(value, str) and value else None


def naming_params(spec: ActionSpec) -> tuple[str, str | None, str] | None:
    """(parameter naming the object, parameter holding its namespace, kind), or None: unresolvable."""
    if spec.target is not None:
        return spec.target.name, spec.target.namespace, spec.target.kind
    props = _properties(spec)
    for name, kind in _NAMING:
        if name in props:
            return name, ("namespace" if "namespace" in props else None), kind
    return None


def resolve(spec: ActionSpec, target: ActionTarget, params: Mapping[str, JsonValue]) -> ResolvedTarget | None:
    """The object ``params`` make the executor touch, with ``conflict`` set when it is not the
    proposal's service (or its namespace). None while the naming parameter is still missing."""
    naming = naming_params(spec)
    if naming is None:
        return ResolvedTarget(
            kind=UNRESOLVED,
            name="?",
            conflict=f"no parameter of {spec.id!r} names what it acts on, so its target cannot be checked",
        )
    name_param, ns_param, kind = naming
    if kind == "workload":
        kind = _text(params, "kind") or kind
    name = _text(params, name_param)
    required = spec.params.get("required")
    if name is None:
        if isinstance(required, list) and name_param in required:
            return None  # still missing: resolved once a person gives it
        # Optional and absent: the action would act on no named object (every node, say).
        return ResolvedTarget(
            kind=UNRESOLVED,
            name="?",
            conflict=f"{name_param!r} is not given, so {spec.id!r} would act on no named target",
        )
    namespace = _text(params, ns_param)
    if namespace is None and isinstance(required, list) and ns_param in required:
        # Its namespace is still missing: resolved once a person gives it.
        return None
    service, conflict = _owner(kind, name, target.service)
    if conflict is None and namespace is not None and target.namespace and namespace != target.namespace:
        conflict = (
            f"parameters name namespace {namespace!r}, the proposal's target is in {target.namespace!r}"
        )
    return ResolvedTarget(kind=kind, name=name, namespace=namespace, service=service, conflict=conflict)


def _owner(kind: str, name: str, service: str) -> tuple[str | None, str | None]:
    """(the service the object belongs to, why it conflicts with ``service``)."""
    if kind in OWNED_KINDS:
        if name == service:
            return service, None
        return name, f"parameters name {kind} {name!r}, the proposal is for service {service!r}"
    if kind in PREFIXED_KINDS:
        if name.startswith(f"{service}-"):
            return service, None
        return None, f"parameters name {kind} {name!r}, which is not one of service {service!r}'s"
    return None, None
