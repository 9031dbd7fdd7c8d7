"""A part that dies while starting is reported with the end of its log, not only the log's path:
a CI run deletes the lab's state folder afterwards, and the message is all that is left of it."""

from __future__ import annotations

import os
import sys

import pytest

from lab import layout, stack


def test_a_part_that_exits_while_starting_is_reported_with_its_last_log_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(layout, "STATE", tmp_path)
    part = stack.Part(
        "dying",
        lambda: [sys.executable, "-c", "import sys; print('first line'); sys.exit('port in use, giving up')"],
        lambda: False,
    )
    pid = stack.spawn(part)
    with pytest.raises(SystemExit) as raised:
        stack.wait(part.ready, part.name, timeout=30, pid=pid)
    os.waitpid(pid, 0)
    message = str(raised.value)
    assert message.startswith("dying exited while starting; see ")
    assert "  | first line" in message
    assert message.rstrip().endswith("| port in use, giving up")


def test_a_missing_log_adds_nothing(tmp_path):
    assert stack._tail(tmp_path / "absent.log") == ""
