"""The smoke test's port block never meets the labs people run, nor a port that is taken."""

from __future__ import annotations

import socket

from .smoke_ports import BLOCK, CANDIDATES, RESERVED, free_block


def test_no_candidate_block_overlaps_the_labs_range():
    for base in CANDIDATES:
        assert base >= RESERVED.stop or base + BLOCK <= RESERVED.start


def test_a_block_with_a_taken_port_is_passed_over():
    first = free_block()
    assert first is not None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", first + 41))  # where that block's Alertmanager would listen
        sock.listen()
        second = free_block()
    assert second is not None and second > first
    assert free_block((47100, 47200, 47300)) is None, "the labs' own range is never offered"
