"""Keyword-only async factories for rows several test modules start from."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls.models import PbxSync
from crm_core.clients.models import Client
from crm_core.clients.schemas import ClientCreate
from crm_core.clients.service import create_client
from crm_core.users.models import User
from tests.conftest import UserFactory


async def managers_client(
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    *,
    name: str = "Olga",
    phones: list[str] | None = None,
    emails: list[str] | None = None,
) -> tuple[User, dict[str, str], Client]:
    """A manager and a client they are responsible for, created as the API creates one (region
    RU): (manager, the manager's auth headers, client)."""
    manager, headers = await make_user(role="manager")
    async with sessions() as s:
        client = await create_client(
            s,
            ClientCreate(
                name=name,
                phones=phones or [],  # type: ignore[arg-type]
                emails=emails or [],
                responsible_id=manager.id,
            ),
            region="RU",
        )
        await s.commit()
    return manager, headers, client


async def pbx_sync_state(session: AsyncSession) -> tuple[bool, int] | None:
    """The pbx_sync row as (synced, epoch); None when nobody ever followed a PBX."""
    row = await session.get(PbxSync, 1)
    return None if row is None else (row.synced, row.epoch)
