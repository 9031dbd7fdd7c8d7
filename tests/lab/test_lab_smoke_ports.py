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
