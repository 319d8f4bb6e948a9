"""Schema migrations (Alembic), run programmatically: `crm-telephony migrate`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str, locale: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    # the language a fresh install's stage and list names are seeded in (DEFAULT_LOCALE);
    # None keeps the schema's English names
    cfg.attributes["seed_locale"] = locale
    return cfg


def _in_thread(fn: object, *args: object) -> None:
    # env.py runs its own event loop; keep it off any loop already running here
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            fn(*args)  # type: ignore[operator]
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if errors:
        raise errors[0]


def upgrade(url: str, revision: str = "head", *, locale: str | None = None) -> None:
    _in_thread(command.upgrade, alembic_config(url, locale), revision)


def downgrade(url: str, revision: str) -> None:
    _in_thread(command.downgrade, alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head", *, locale: str | None = None) -> None:
    await asyncio.to_thread(lambda: upgrade(url, revision, locale=locale))
