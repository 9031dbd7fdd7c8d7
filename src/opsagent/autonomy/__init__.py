"""What the agent may do about an incident: the action catalogue, the target an action will really
touch, and the autonomy policy that judges it.

The face holds the pure, light parts. The runner that executes decisions (``autonomy.runner``, with
its executors, verifier and notifiers) is assembled by ``factory.build_action_runner`` and imported
where it is used.
"""

from opsagent.autonomy.catalog import ActionCatalog
from opsagent.autonomy.policy import decide, effective_level, policy_version
from opsagent.autonomy.target import resolve as resolve_target

__all__ = ["ActionCatalog", "decide", "effective_level", "policy_version", "resolve_target"]
