"""indexes the reports' plans need: missed calls, deals and clients and results by time

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 05:00:00

A month's report reads the period's missed calls (and the agents they rang) through a partial
index instead of reading the JSON of every communication; the deals created or closed in a
period, the clients created in it (lead sources) and the contact results set in it (results
report) are found by time instead of by reading the whole table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_communications_missed",
        "communications",
        ["occurred_at"],
        postgresql_where=sa.text("kind = 'call' AND (extra ->> 'missed') = 'true'"),
    )
    op.create_index("ix_deals_created_at", "deals", ["created_at"])
    op.create_index("ix_deals_closed_at", "deals", ["closed_at"])
    op.create_index("ix_clients_created_at", "clients", ["created_at"])
    op.create_index(
        "ix_contact_result_records_created_at", "contact_result_records", ["created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_contact_result_records_created_at", table_name="contact_result_records")
    op.drop_index("ix_clients_created_at", table_name="clients")
    op.drop_index("ix_deals_closed_at", table_name="deals")
    op.drop_index("ix_deals_created_at", table_name="deals")
    op.drop_index("ix_communications_missed", table_name="communications")
