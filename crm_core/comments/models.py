from __future__ import annotations

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base
from crm_core.models_common import created_at, intpk


class CommunicationComment(Base):
    """A user's comment on a logged call, SMS or email."""

    __tablename__ = "communication_comments"

    id: Mapped[intpk]
    communication_id: Mapped[int] = mapped_column(
        ForeignKey("communications.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[created_at]
