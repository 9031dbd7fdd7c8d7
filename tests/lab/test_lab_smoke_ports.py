"""The smoke test's port block never meets the labs people run, nor a port that is taken."""

from __future__ import annotations

import os
import socket
from pathlib import Path

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
    assert free_block((27100, 27200, 27300)) is None, "the labs' own range is never offered"


def test_a_port_held_by_an_outgoing_connection_is_told_apart_from_a_server():
    from lab.stack import port_free, port_holder

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.socket() as client:
            # an outgoing connection whose local port is one a lab would listen on
            client.bind(("127.0.0.1", 0))
            held = client.getsockname()[1]
            client.connect(server.getsockname())
            assert not port_free(held)
            assert port_holder(held).startswith("an outgoing connection holds it")
        listening = server.getsockname()[1]
        assert not port_free(listening)
        assert port_holder(listening) == "a process the lab did not start listens on it"


def test_every_lab_port_lies_below_the_kernels_ephemeral_range():
    """Outgoing connections take their local port from that range, so a lab port inside it can be
    taken between the check and the bind (a CI run lost its lab's opsagent that way)."""
    from lab import layout

    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    labs = (*RESERVED, *(p for base in CANDIDATES for p in range(base, base + BLOCK)))
    assert max(labs) < low
    assert layout.BASE_PORT in RESERVED or "LAB_BASE_PORT" in os.environ
