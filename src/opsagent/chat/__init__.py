"""Chat: one turn of a conversation about an incident, as a stream of events.

``turn.py`` shapes the events (the HTTP chat endpoint and ``opsagent ask`` both call
``chat_turn``); ``offline.py`` is the answer without an LLM; ``binding.py`` finds the open incident
a question is about. The LLM side is ``reasoning.chat_turn``.
"""

from opsagent.chat.turn import (
    AuditLine,
    ChatEvent,
    ChatMessage,
    chat_turn,
    evidence_event,
    executed_actions,
    findings_event,
    offline_answer,
)

__all__ = [
    "AuditLine",
    "ChatEvent",
    "ChatMessage",
    "chat_turn",
    "evidence_event",
    "executed_actions",
    "findings_event",
    "offline_answer",
]
