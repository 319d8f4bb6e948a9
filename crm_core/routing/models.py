from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base


class RoutingTurn(Base):
    """Round-robin bookkeeping: how many calls each manager was given and when last."""

    __tablename__ = "routing_turns"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # a global, monotonically increasing ticket: the manager with the smallest goes next
    last_ticket: Mapped[int] = mapped_column(BigInteger, default=0)
    routed_count: Mapped[int] = mapped_column(BigInteger, default=0)
