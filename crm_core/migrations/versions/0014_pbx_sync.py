"""pbx_sync: whether agent_states follow the PBX right now, for the routers of every instance

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 10:00:00

After the AMI link is lost (Asterisk restarted, the link dropped) or a new follower starts, calls
may have ended unseen: their agents stay "talking" in agent_states until the reconnect's
reconcile commits. The follower claims the row as it starts, writes here when it loses the PBX
and, in that commit, when it is back in sync; a router asked about a call meanwhile waits
(briefly) for it. No row, as after this migration: nobody follows a PBX, agent_states are all
there is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pbx_sync",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("follower", sa.Uuid(), nullable=False),
        sa.Column("synced", sa.Boolean(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_pbx_sync_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pbx_sync")),
    )


def downgrade() -> None:
    op.drop_table("pbx_sync")
