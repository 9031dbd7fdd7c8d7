"""The live service's call graph: from configuration (a file, inline calls) and from call-edge series.

A call graph lets the engine tell a cause from its victims (a slow callee slows its callers). A
live system gets one from three places, merged: a ``topology.yaml`` file, calls written inline in
the settings, and the call-edge series Prometheus returns (series with the peer label: the
caller's ``service`` calling ``peer``), which a service mesh or an instrumented HTTP client already
provides. Nothing configured and no such series: the pipeline names the missing graph as a gap.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from opsagent.config import TopologySettings
from opsagent.domain import Edge, Incident, MetricSeries, Topology
from opsagent.errors import TopologyError
from opsagent.evidence.base import Collected


def read_topology_file(path: Path) -> Topology:
    """``services: {NAME: {calls: [NAME, ...]}}`` → ``Topology``; ``TopologyError`` naming what is wrong."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise TopologyError(f"topology file {path}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise TopologyError(f"topology file {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    services = raw.get("services") if isinstance(raw, dict) else None
    if not isinstance(services, dict):
        raise TopologyError(f"topology file {path}: expected 'services: {{NAME: {{calls: [...]}}}}'")
    calls: dict[str, list[str]] = {}
    for name, spec in services.items():
        callees = (spec or {}).get("calls", []) if isinstance(spec, dict) else None
        if not isinstance(callees, list):
            raise TopologyError(f"topology file {path}: services.{name}.calls must be a list")
        calls[str(name)] = [str(c) for c in callees]
    return from_calls(calls)


def from_calls(calls: dict[str, list[str]]) -> Topology:
    """Caller → callees as a ``Topology`` (every named service listed, edges without repeats)."""
    services = list(dict.fromkeys([*calls, *(c for callees in calls.values() for c in callees)]))
    edges = list(
        dict.fromkeys(Edge(caller=caller, callee=callee) for caller, cs in calls.items() for callee in cs)
    )
    return Topology(services=services, edges=edges)


def from_peer_series(metrics: list[MetricSeries]) -> Topology:
    """The call graph the call-edge series describe: one edge per (service, peer) seen with data."""
    edges = list(
        dict.fromkeys(
            Edge(caller=m.service, callee=m.peer)
            for m in metrics
            if m.peer is not None and m.peer != m.service and m.values
        )
    )
    services = list(dict.fromkeys(name for e in edges for name in (e.caller, e.callee)))
    return Topology(services=services, edges=edges)


def merge(*parts: Topology) -> Topology:
    services = list(dict.fromkeys(s for part in parts for s in part.services))
    edges = list(dict.fromkeys(e for part in parts for e in part.edges))
    return Topology(services=services, edges=edges)


class ConfiguredTopology:
    """Evidence source: the call graph from ``OPSAGENT_TOPOLOGY__FILE`` and ``OPSAGENT_TOPOLOGY__CALLS``.

    The file is read at construction, so a broken one stops start-up with its reason rather than
    turning every investigation into a gap; it is read again when it changes on disk.
    """

    name = "topology"

    def __init__(self, settings: TopologySettings) -> None:
        self._settings = settings
        self._stamp: float | None = None
        self._from_file = Topology()
        self._inline = from_calls(settings.calls)
        self._reload()

    @property
    def configured(self) -> bool:
        return self._settings.file is not None or bool(self._settings.calls)

    def _reload(self) -> None:
        path = self._settings.file
        if path is None:
            return
        try:
            stamp = Path(path).stat().st_mtime
        except OSError as exc:
            raise TopologyError(f"topology file {path}: cannot read it ({exc.strerror or exc})") from None
        if stamp != self._stamp:
            self._from_file = read_topology_file(path)
            self._stamp = stamp

    def collect(self, incident: Incident) -> Collected:
        self._reload()
        return Collected(topology=merge(self._from_file, self._inline))
