"""active_calls with a schema: typed columns for the call and its client, not a JSON view

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-02 02:00:00

The `view` blob goes: the call's phase, numbers and agents, and who the call is with (client,
deal, whether the call opened the card) become columns, written by their owners apart (the
live lane saves the call, call_started its client) and read back by the pop, the log and the
dashboards. `state` is renamed `tracker_state`: the tracker's own resumable state, opaque to
the CRM. Calls in progress at the upgrade keep their tracker state; their columns fill in with
their next fact.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = (
    "direction",
    "state",
    "caller_number",
    "caller_name",
    "did_or_dialled",
    "agent_extension",
    "talking",
    "queue",
)


def upgrade() -> None:
    op.alter_column("active_calls", "state", new_column_name="tracker_state")
    op.drop_column("active_calls", "view")
    for name in _TEXT:
        op.add_column("active_calls", sa.Column(name, sa.Text(), nullable=True))
    op.add_column(
        "active_calls",
        sa.Column(
            "ringing",
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )
    for name in ("queued_at", "answered_at"):
        op.add_column("active_calls", sa.Column(name, sa.DateTime(timezone=True), nullable=True))
    op.add_column("active_calls", sa.Column("client_id", sa.Integer(), nullable=True))
    op.add_column("active_calls", sa.Column("deal_id", sa.Integer(), nullable=True))
    op.add_column("active_calls", sa.Column("client_name", sa.Text(), nullable=True))
    op.add_column("active_calls", sa.Column("client_number", sa.Text(), nullable=True))
    op.add_column(
        "active_calls",
        sa.Column("client_created", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    for name in (
        "client_created",
        "client_number",
        "client_name",
        "deal_id",
        "client_id",
        "answered_at",
        "queued_at",
        "ringing",
        *_TEXT,
    ):
        op.drop_column("active_calls", name)
    op.add_column(
        "active_calls",
        sa.Column(
            "view",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.alter_column("active_calls", "view", server_default=None)
    op.alter_column("active_calls", "tracker_state", new_column_name="state")
