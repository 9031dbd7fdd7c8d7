"""Offline evaluation: recorded-incident formats (reader and writer), importers, replay, scoring, reports.

The face holds the native format and replay; the harness (``evals.harness.run_cases``) and the
dataset importers (``evals.discover``) are imported where they are used.
"""

from opsagent.evals.native import load_native
from opsagent.evals.native_writer import write_recording
from opsagent.evals.replay import replay_sources

__all__ = ["load_native", "replay_sources", "write_recording"]
