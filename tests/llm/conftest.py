"""Fixtures for the LLM tests: the scripted OpenAI-compatible server on a free loopback port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The support modules sit next to this file; importlib mode does not put it on sys.path.
sys.path.insert(0, str(Path(__file__).parent))

from fake_openai import FakeOpenAI


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()
