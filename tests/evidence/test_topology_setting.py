"""The topology setting fails closed: a broken file stops start-up with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsagent.config import Settings
from opsagent.errors import TopologyError
from opsagent.factory import live_sources


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("services: [frontend]\n", "expected 'services:"),
        ("services:\n  frontend: {calls: orders}\n", "services.frontend.calls must be a list"),
        ("services: {a: [\n", "not valid YAML"),
    ],
)
def test_a_broken_topology_file_stops_start_up(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    with pytest.raises(TopologyError, match=reason):
        live_sources(Settings(data_dir=tmp_path, topology={"file": path}))


def test_a_missing_topology_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TopologyError, match="cannot read it"):
        live_sources(Settings(data_dir=tmp_path, topology={"file": tmp_path / "nope.yaml"}))
