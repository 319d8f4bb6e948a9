"""The running service's long-lived parts, built once and passed in (nothing connects at import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.db import Publisher, discard_events
from crm_core.users.security import PasswordWorkers
from web.settings import Settings


@dataclass
class Container:
    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    publish: Publisher = discard_events
    # argon2 runs here, never on the event loop (PASSWORD_HASH_WORKERS)
    passwords: PasswordWorkers = field(default_factory=PasswordWorkers)
    # parts added by the lifespan when their subsystems start (hub, AMI listener, AGI server…)
    extras: dict[str, Any] = field(default_factory=dict)
