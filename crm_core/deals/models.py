from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import Base
from crm_core.models_common import created_at, intpk

DEFAULT_STAGES: list[tuple[str, bool, bool]] = [
    # name, closes the deal, is a win
    ("Unsorted", False, False),
    ("First contact", False, False),
    ("Negotiation", False, False),
    ("Deciding", False, False),
    ("Contract", False, False),
    ("Won", True, True),
    ("Lost", True, False),
]


class DealStage(Base):
    """One step of the configurable, ordered sales pipeline."""

    __tablename__ = "deal_stages"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(64), unique=True)
    position: Mapped[int] = mapped_column(SmallInteger)
    is_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    is_won: Mapped[bool] = mapped_column(Boolean, default=False)

    @property
    def kind(self) -> str:
        """open, won or lost: what a move into the stage does to the deal."""
        if not self.is_closed:
            return "open"
        return "won" if self.is_won else "lost"


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (
        # "the client's open deal" is asked on every call: keep it one index probe
        Index("ix_deals_open_by_client", "client_id", postgresql_where="closed_at IS NULL"),
        # the board's won/lost zones: the latest closed deals of one stage
        Index("ix_deals_stage_closed_at", "stage_id", "closed_at"),
        # the reports: deals created or closed in a period (one day of years of deals)
        Index("ix_deals_created_at", "created_at"),
        Index("ix_deals_closed_at", "closed_at"),
    )

    id: Mapped[intpk]
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    responsible_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    lead_source: Mapped[str | None] = mapped_column(String(100))
    stage_id: Mapped[int] = mapped_column(ForeignKey("deal_stages.id"), index=True)
    created_at: Mapped[created_at]
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lost_reason: Mapped[str | None] = mapped_column(Text)
    # when the deal entered its stage: the board's "days in stage" without reading the history
    stage_since: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )

    stage: Mapped[DealStage] = relationship(lazy="joined")


class DealStageMove(Base):
    """Every stage move, kept: who, when, from, to."""

    __tablename__ = "deal_stage_moves"

    id: Mapped[intpk]
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), index=True)
    from_stage_id: Mapped[int | None] = mapped_column(ForeignKey("deal_stages.id"))
    to_stage_id: Mapped[int] = mapped_column(ForeignKey("deal_stages.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    moved_at: Mapped[created_at]
    lost_reason: Mapped[str | None] = mapped_column(Text)


CHOICE_KINDS = ("lost_reason", "lead_source")


class DealChoice(Base):
    """One entry of an admin-edited list the deal forms offer: lost reasons, lead sources.

    Deals keep the chosen text, not a reference: renaming or removing an entry leaves the
    history as it was written.
    """

    __tablename__ = "deal_choices"
    __table_args__ = (UniqueConstraint("kind", "name"),)

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(SmallInteger)
