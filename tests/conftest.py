"""Fixtures for every test: the scripted OpenAI-compatible server on a free loopback port.

``tests/support`` holds the shared test parts (real servers' fixtures, the scripted LLM); it is put
on the path so any test imports them by name (``from fake_openai import FakeOpenAI``): pytest's
importlib mode does not do it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "support"))

from fake_openai import FakeOpenAI


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()
