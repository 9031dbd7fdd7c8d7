"""Where the lab keeps PostgreSQL's data: a folder the postgres user can reach, whatever the clone's."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import layout, stack

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="PostgreSQL runs as its own user only under root")


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    # Not pytest's tmp_path: that lies under /tmp/pytest-of-root, a folder closed to others.
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _state_under(folder: Path, mode: int, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder.mkdir()
    folder.chmod(mode)
    state = folder / "repo" / ".lab"
    monkeypatch.setattr(layout, "STATE", state)
    return state


def test_open_clone_keeps_data_in_state(open_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = _state_under(open_tmp / "open", 0o755, monkeypatch)
    assert stack.pg_dir() == state / "pg"


def test_closed_clone_moves_data_where_postgres_can_reach(
    open_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = open_tmp / "var-tmp"
    monkeypatch.setattr(stack, "PG_OUTSIDE_ROOT", outside)
    state = _state_under(open_tmp / "closed", 0o700, monkeypatch)
    data = stack.pg_dir()
    assert not data.is_relative_to(state)
    assert data.parent.parent == outside
    # The same lab always finds the same folder; another lab gets its own.
    assert stack.pg_dir() == data
    monkeypatch.setattr(layout, "STATE", state.parent / ".lab-b")
    assert stack.pg_dir() != data
    # `down --purge` deletes it once PostgreSQL is stopped.
    monkeypatch.setattr(layout, "STATE", state)
    data.mkdir(parents=True)
    stack.purge_pg_outside()
    assert not data.parent.exists()
