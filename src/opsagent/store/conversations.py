"""Chat conversations and their messages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from opsagent.store.base import utcnow
from opsagent.store.models import ChatMessageRow, ConversationRow
from opsagent.store.sql import new_id, require_row


def get_or_create_conversation(
    session: Session, conversation_id: str | None, *, incident_id: str | None, user_name: str
) -> ConversationRow:
    if conversation_id is not None:
        conv = require_row(session, ConversationRow, conversation_id, "conversation")
        if incident_id and not conv.incident_id:
            conv.incident_id = incident_id
        return conv
    conv = ConversationRow(id=new_id(), incident_id=incident_id, user_name=user_name)
    session.add(conv)
    session.flush()
    return conv


def messages_of(session: Session, conversation_id: str) -> list[ChatMessageRow]:
    return list(
        session.scalars(
            select(ChatMessageRow)
            .where(ChatMessageRow.conversation_id == conversation_id)
            .order_by(ChatMessageRow.seq)
        )
    )


def append_message(
    session: Session, conversation_id: str, role: str, content: str, events: list[Any] | None = None
) -> int:
    seq = (
        session.scalar(
            select(func.max(ChatMessageRow.seq)).where(ChatMessageRow.conversation_id == conversation_id)
        )
        or 0
    ) + 1
    session.add(
        ChatMessageRow(conversation_id=conversation_id, seq=seq, role=role, content=content, events=events)
    )
    session.execute(
        update(ConversationRow).where(ConversationRow.id == conversation_id).values(updated_at=utcnow())
    )
    return seq
