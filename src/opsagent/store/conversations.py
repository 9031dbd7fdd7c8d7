"""Chat conversations and their messages."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from opsagent.errors import NotFoundError
from opsagent.store.base import utcnow
from opsagent.store.models import ChatMessageRow, ConversationRow
from opsagent.store.sql import new_id


def owned_conversation(
    session: Session, conversation_id: str, *, user_name: str, admin: bool = False
) -> ConversationRow:
    """The conversation, if ``user_name`` started it (an admin may read any).

    Someone else's conversation is "not found", like one that does not exist: its id says nothing.
    """
    conv = session.get(ConversationRow, conversation_id)
    if conv is None or (not admin and conv.user_name != user_name):
        raise NotFoundError(f"no conversation {conversation_id!r} of yours")
    return conv


def list_conversations(session: Session, *, user_name: str | None, limit: int = 100) -> list[ConversationRow]:
    """The latest conversations of ``user_name`` (None: everyone's), most recently active first."""
    query = select(ConversationRow).order_by(ConversationRow.updated_at.desc()).limit(limit)
    if user_name is not None:
        query = query.where(ConversationRow.user_name == user_name)
    return list(session.scalars(query))


def get_or_create_conversation(
    session: Session,
    conversation_id: str | None,
    *,
    incident_id: str | None,
    user_name: str,
    admin: bool = False,
) -> ConversationRow:
    """Continue one of ``user_name``'s conversations (an admin may continue any), or start one."""
    if conversation_id is not None:
        conv = owned_conversation(session, conversation_id, user_name=user_name, admin=admin)
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
