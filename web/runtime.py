"""Building and closing the service's container: database (embedded when none is configured)."""

from __future__ import annotations

import logging

from crm_core.db import make_engine, make_session_factory
from crm_core.embedded import resolve_database_url
from crm_core.migrate import upgrade_async
from crm_core.users.security import PasswordWorkers
from web.container import Container
from web.settings import Settings

logger = logging.getLogger(__name__)


async def build_container(settings: Settings, *, migrate: bool = True) -> Container:
    url, server = resolve_database_url(settings.core.database_url, settings.core.data_dir)
    if migrate:
        await upgrade_async(url, locale=settings.core.default_locale)
    engine = make_engine(url, timeout=settings.core.database_timeout_seconds)
    c = Container(
        settings=settings,
        database_url=url,
        engine=engine,
        sessions=make_session_factory(engine),
        passwords=PasswordWorkers(settings.web.password_hash_workers or None),
    )
    c.extras["embedded_server"] = server
    return c


async def close_container(c: Container) -> None:
    c.passwords.close()
    await c.engine.dispose()
