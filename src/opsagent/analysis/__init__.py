"""The statistical engine: pure functions over arrays (no I/O).

Named stages, one module each (prepare → split → score → channels → weigh → propagate → explain);
``rank_suspects`` runs them. The log templater and error classifier (``logs``, ``log_digest``) serve
the engine and the report's log summary alike.
"""

from opsagent.analysis.engine import rank_suspects
from opsagent.analysis.log_summary import summarize_logs
from opsagent.analysis.options import DEFAULT_OPTIONS, EngineOptions
from opsagent.analysis.split import normal_end

__all__ = ["DEFAULT_OPTIONS", "EngineOptions", "normal_end", "rank_suspects", "summarize_logs"]
