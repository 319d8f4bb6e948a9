"""users.locale: the language each user's pages, messages and e-mails are in

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:45:00

NULL means the user has not chosen: the browser's language decides, else DEFAULT_LOCALE.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("users", sa.Column("locale", sa.String(length=8), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "locale")
