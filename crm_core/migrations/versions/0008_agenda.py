"""agenda: reminders that fire once, callbacks closed by the return call, contact results,
comments on communications, who has a page open

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 02:00:00

Open tasks get remind_at = due_at; those already past are marked reminded so an upgrade does
not send a flood of stale reminders.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")


def upgrade() -> None:
    op.add_column("tasks", sa.Column("contact_type", sa.String(length=16), nullable=True))
    op.add_column("tasks", sa.Column("goal", sa.Text(), nullable=True))
    op.add_column("tasks", sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tasks", sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "tasks",
        sa.Column("tries", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("tasks", sa.Column("last_missed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tasks", sa.Column("closed_by_communication_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_tasks_closed_by_communication_id_communications"),
        "tasks",
        "communications",
        ["closed_by_communication_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_check_constraint(
        op.f("ck_tasks_contact_type"),
        "tasks",
        "contact_type IN ('call', 'meeting', 'email', 'sms', 'visit', 'other')",
    )
    op.create_index(
        "ix_tasks_reminder_due",
        "tasks",
        ["remind_at"],
        unique=False,
        postgresql_where=sa.text("reminded_at IS NULL AND NOT done"),
    )
    op.execute(
        "UPDATE tasks SET remind_at = due_at,"
        " reminded_at = CASE WHEN due_at < now() THEN now() END"
        " WHERE due_at IS NOT NULL AND NOT done"
    )
    op.execute(
        "UPDATE tasks SET tries = 1, last_missed_at = created_at"
        " WHERE kind = 'callback' AND communication_id IS NOT NULL"
    )

    op.create_table(
        "reminder_emails",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'sending', 'sent', 'failed')",
            name=op.f("ck_reminder_emails_state"),
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_reminder_emails_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_reminder_emails_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder_emails")),
    )
    op.create_index(
        op.f("ix_reminder_emails_task_id"), "reminder_emails", ["task_id"], unique=False
    )
    op.create_index(
        "ix_reminder_emails_due",
        "reminder_emails",
        ["id"],
        unique=False,
        postgresql_where=sa.text("state IN ('pending', 'sending')"),
    )

    op.create_table(
        "open_pages",
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_open_pages_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_id", "user_id", name=op.f("pk_open_pages")),
    )

    op.create_table(
        "contact_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('postponed', 'refused', 'offer_sent', 'sale', 'wrong_number', 'other')",
            name=op.f("ck_contact_results_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_results")),
        sa.UniqueConstraint("name", name=op.f("uq_contact_results_name")),
    )

    op.create_table(
        "contact_result_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=True),
        sa.Column("communication_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["contact_results.id"],
            name=op.f("fk_contact_result_records_result_id_contact_results"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_contact_result_records_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deals.id"],
            name=op.f("fk_contact_result_records_deal_id_deals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["communication_id"],
            ["communications.id"],
            name=op.f("fk_contact_result_records_communication_id_communications"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_contact_result_records_task_id_tasks"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_contact_result_records_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_result_records")),
    )
    for column in ("result_id", "client_id", "communication_id"):
        op.create_index(
            op.f(f"ix_contact_result_records_{column}"),
            "contact_result_records",
            [column],
            unique=False,
        )

    op.create_table(
        "communication_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("communication_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["communication_id"],
            ["communications.id"],
            name=op.f("fk_communication_comments_communication_id_communications"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_communication_comments_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_communication_comments")),
    )
    op.create_index(
        op.f("ix_communication_comments_communication_id"),
        "communication_comments",
        ["communication_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("communication_comments")
    op.drop_table("contact_result_records")
    op.drop_table("contact_results")
    op.drop_table("open_pages")
    op.drop_table("reminder_emails")
    op.drop_index("ix_tasks_reminder_due", table_name="tasks")
    op.drop_constraint(op.f("ck_tasks_contact_type"), "tasks", type_="check")
    op.drop_constraint(
        op.f("fk_tasks_closed_by_communication_id_communications"), "tasks", type_="foreignkey"
    )
    for column in (
        "closed_by_communication_id",
        "last_missed_at",
        "tries",
        "reminded_at",
        "remind_at",
        "goal",
        "contact_type",
    ):
        op.drop_column("tasks", column)
