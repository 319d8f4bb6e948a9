"""event_staged: messages written in their work's transaction, numbered once it has committed

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 17:20:00

The call pipeline's messages are staged here in the transaction of the work they announce, with
no lock held, and moved to event_log (numbered, announced) right after its COMMIT. A crash in
between leaves them staged, and the hub publishes them when it next looks (its start, its
cleanup): a committed call's news is no longer lost with the process.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_staged",
        sa.Column("batch", sa.Uuid(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "staged_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("batch", "n", name=op.f("pk_event_staged")),
    )


def downgrade() -> None:
    op.drop_table("event_staged")
