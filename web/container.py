"""The running service's long-lived objects, typed: built once by web/compose.py, passed in.

A bare container (settings, database, password workers) serves requests and CLI commands; the
app's lifespan composes the running parts onto it (`compose.build_services`), and a part this
instance does not run (AMI or FastAGI switched off) is None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.db import Publisher, discard_events
from crm_core.users.security import PasswordWorkers
from notifier.hub import EventHub
from notifier.leader import LeaderElection
from telephony.originate import Originator
from web.parts.agi_routing import AgiRouting
from web.parts.call_tracking import CallTracking
from web.parts.messaging import Messaging
from web.parts.reminders import Reminders
from web.session_watch import SessionWatch
from web.settings import Settings
from web.signin_locks import KnownLocks


class Part(Protocol):
    """Something the lifespan starts (in the order composed) and stops (in reverse)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Container:
    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # the unit of work's publisher: the event hub's once composed, nobody before (CLI, tests)
    publish: Publisher = discard_events
    # argon2 runs here, never on the event loop (PASSWORD_HASH_WORKERS)
    passwords: PasswordWorkers = field(default_factory=PasswordWorkers)
    signin_locks: KnownLocks = field(default_factory=KnownLocks)
    embedded_server: Any = None  # the embedded PostgreSQL's handle, kept alive while we run
    # the running parts (web/parts/ and the hub), composed by the lifespan
    hub: EventHub | None = None
    session_watch: SessionWatch | None = None
    call_tracking: CallTracking | None = None  # follows the PBX while this instance is elected
    ami_election: LeaderElection | None = None  # None: AMI_ENABLED is off
    agi_routing: AgiRouting | None = None  # None: AGI_ENABLED is off
    messaging: Messaging | None = None
    reminders: Reminders | None = None
    # click-to-call: None = AMI Originate (telephony/originate.py:AmiOriginator); the demo's
    # replayed PBX puts its stand-in here (web/demo_originate.py)
    originator: Originator | None = None
    parts: tuple[Part, ...] = ()
