"""deals workspace: days in stage, lost reasons in the history, admin-edited lists

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 02:00:00

A fresh install names its stages and seeds its lists in the language `crm_core.migrate` passes
(DEFAULT_LOCALE from `crm-telephony migrate` and at start-up); with none given (tests, benches)
the schema keeps 0001's English names. The names are data, copied here on purpose: a migration
must seed tomorrow what it seeded today.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0001's stage names, in order, and what each becomes in a Russian fresh install
ENGLISH_STAGES = ["Unsorted", "First contact", "Negotiation", "Deciding", "Contract", "Won", "Lost"]
STAGE_NAMES = {
    "en": ENGLISH_STAGES,
    "ru": [
        "Неразобранное",
        "Первичный контакт",
        "Переговоры",
        "Принимают решение",
        "Договор",
        "Успешно",
        "Провалено",
    ],
}
LOST_REASONS = {
    "en": ["Too expensive", "Chose a competitor", "No need", "No answer", "Other"],
    "ru": ["Дорого", "Выбрали конкурента", "Нет потребности", "Не дозвонились", "Другое"],
}
LEAD_SOURCES = {
    "en": ["Call", "Website", "Referral", "Exhibition", "Email", "Other"],
    "ru": ["Звонок", "Сайт", "Рекомендация", "Выставка", "Электронная почта", "Другое"],
}


def _locale() -> str:
    given = context.config.attributes.get("seed_locale")
    return given if given in STAGE_NAMES else "en"


def upgrade() -> None:
    op.add_column(
        "deals",
        sa.Column(
            "stage_since",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.execute(
        """
        UPDATE deals d SET stage_since = COALESCE(
            (SELECT max(m.moved_at) FROM deal_stage_moves m
              WHERE m.deal_id = d.id AND m.to_stage_id = d.stage_id),
            d.created_at)
        """
    )
    op.create_index("ix_deals_stage_closed_at", "deals", ["stage_id", "closed_at"], unique=False)
    op.add_column("deal_stage_moves", sa.Column("lost_reason", sa.Text(), nullable=True))
    choices = op.create_table(
        "deal_choices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deal_choices")),
        sa.UniqueConstraint("kind", "name", name=op.f("uq_deal_choices_kind")),
    )
    locale = _locale()
    op.bulk_insert(
        choices,
        [
            {"kind": kind, "name": name, "position": i}
            for kind, names in (
                ("lost_reason", LOST_REASONS[locale]),
                ("lead_source", LEAD_SOURCES[locale]),
            )
            for i, name in enumerate(names)
        ],
    )
    _localize_fresh_stages(locale)


def _localize_fresh_stages(locale: str) -> None:
    """Rename 0001's stages when nothing has used them yet (a fresh install)."""
    if locale == "en":
        return
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT EXISTS (SELECT 1 FROM deals)")).scalar():
        return
    names = [r[0] for r in conn.execute(sa.text("SELECT name FROM deal_stages ORDER BY position"))]
    if names != ENGLISH_STAGES:
        return
    for old, new in zip(ENGLISH_STAGES, STAGE_NAMES[locale], strict=True):
        conn.execute(
            sa.text("UPDATE deal_stages SET name = :new WHERE name = :old"),
            {"new": new, "old": old},
        )


def downgrade() -> None:
    op.drop_table("deal_choices")
    op.drop_column("deal_stage_moves", "lost_reason")
    op.drop_index("ix_deals_stage_closed_at", table_name="deals")
    op.drop_column("deals", "stage_since")
