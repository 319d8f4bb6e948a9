"""agent presence (state now, history, pause reasons), queue entries and sales plans

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 02:00:00

Pause reasons are seeded in DEFAULT_LOCALE (admins rename or add to them afterwards).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_core.presence.rules import DEFAULT_PAUSE_REASONS
from crm_core.settings import CoreSettings

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    reasons = op.create_table(
        "pause_reasons",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(length=32), nullable=False, unique=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
    )
    locale = CoreSettings().default_locale
    op.bulk_insert(
        reasons,
        [
            {"code": code, "name": names[locale], "position": i, "is_active": True}
            for i, (code, names) in enumerate(DEFAULT_PAUSE_REASONS)
        ],
    )
    op.create_table(
        "agent_presence",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "presence_history",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_presence_history_user_since", "presence_history", ["user_id", "since"])
    op.create_table(
        "queue_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("linkedid", sa.String(length=64), nullable=False),
        sa.Column("queue", sa.String(length=80), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent_extension", sa.String(length=16), nullable=True),
        sa.Column("abandoned", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_queue_entries_joined", "queue_entries", ["joined_at"])
    op.create_index("ix_queue_entries_linkedid", "queue_entries", ["linkedid"])
    op.create_table(
        "sales_plans",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("month", sa.Date(), primary_key=True),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sales_plans")
    op.drop_index("ix_queue_entries_linkedid", table_name="queue_entries")
    op.drop_index("ix_queue_entries_joined", table_name="queue_entries")
    op.drop_table("queue_entries")
    op.drop_index("ix_presence_history_user_since", table_name="presence_history")
    op.drop_table("presence_history")
    op.drop_table("agent_presence")
    op.drop_table("pause_reasons")
