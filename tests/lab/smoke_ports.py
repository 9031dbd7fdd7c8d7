"""The smoke test's port block: clear of the labs people run, and free when the test starts.

Labs run by hand or by a campaign use 27100-27399 (the default lab at 27100, a second one side by
side at 27200, more at 27300). CI runs the smoke test while a developer's labs may be up, so the
test takes a block above that range, and only one whose every port can be bound right now (another
smoke test, or anything else, may hold one).
"""

from __future__ import annotations

import socket

# Offsets the lab uses from its base port (lab/layout.py: nginx at +0 ... opsagent at +50), rounded up.
BLOCK = 60
RESERVED = range(27100, 27400)
# Below the kernel's ephemeral range (from 32768), like the labs': no outgoing connection takes them.
CANDIDATES = tuple(range(27400, 28000, 100))


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_block(candidates: tuple[int, ...] = CANDIDATES) -> int | None:
    """The first base port whose whole block lies outside ``RESERVED`` and is free; None if none is."""
    for base in candidates:
        ports = range(base, base + BLOCK)
        if ports.start < RESERVED.stop and RESERVED.start < ports.stop:
            continue
        if all(_free(p) for p in ports):
            return base
    return None
