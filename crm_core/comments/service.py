"""Comments on a logged communication (a call, SMS or email), as the Etnomir CRM has them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.comments.models import CommunicationComment
from crm_core.communications.models import Communication
from crm_core.errors import NotFound
from crm_core.users.models import User
from crm_core.workspace.schemas import CommentOut


async def _check(session: AsyncSession, communication_id: int) -> None:
    if await session.get(Communication, communication_id) is None:
        raise NotFound(
            f"communication {communication_id} not found", code="communication.not_found"
        )


async def add_comment(
    session: AsyncSession, communication_id: int, body: str, *, actor: User
) -> CommentOut:
    await _check(session, communication_id)
    comment = CommunicationComment(communication_id=communication_id, user_id=actor.id, body=body)
    session.add(comment)
    await session.flush()
    await session.refresh(comment, ["created_at"])
    return CommentOut(
        id=comment.id,
        communication_id=communication_id,
        user_id=actor.id,
        user_name=actor.full_name or actor.login,
        body=body,
        created_at=comment.created_at,
    )


async def list_comments(session: AsyncSession, communication_id: int) -> list[CommentOut]:
    await _check(session, communication_id)
    rows = await session.execute(
        select(CommunicationComment, User.full_name, User.login)
        .outerjoin(User, User.id == CommunicationComment.user_id)
        .where(CommunicationComment.communication_id == communication_id)
        .order_by(CommunicationComment.created_at, CommunicationComment.id)
    )
    return [
        CommentOut(
            id=c.id,
            communication_id=c.communication_id,
            user_id=c.user_id,
            user_name=(full or login) if c.user_id is not None else None,
            body=c.body,
            created_at=c.created_at,
        )
        for c, full, login in rows.all()
    ]
