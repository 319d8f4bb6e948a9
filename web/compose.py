"""The composition root: the container opened, its running parts built in dependency order.

    open_container(settings)   database (embedded when none is configured), migrations, password
                               workers: what a request or a CLI command needs
    build_services(container)  the running parts on it, in the order each needs the one before:
                               event hub -> its publish -> session watch, call tracking and its
                               election, FastAGI routing, messaging (the hub's transactional
                               publisher), reminders
    running(container)         starts the parts in that order, stops them in reverse

The app's lifespan uses these; so do the demo, the live tests and bench/ through `create_app`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from crm_core.db import make_engine, make_session_factory
from crm_core.embedded import resolve_database_url
from crm_core.migrate import upgrade_async
from crm_core.users.security import PasswordWorkers
from notifier.hub import EventHub
from notifier.leader import LeaderElection, lock_key
from web.container import Container, Part
from web.parts.agi_routing import AgiRouting
from web.parts.call_tracking import CallTracking
from web.parts.messaging import Messaging
from web.parts.reminders import Reminders
from web.session_watch import SessionWatch
from web.settings import Settings

logger = logging.getLogger(__name__)

AMI_LISTENER_LOCK = lock_key("crm-telephony:ami-listener")


async def open_container(settings: Settings, *, migrate: bool = True) -> Container:
    url, server = resolve_database_url(settings.core.database_url, settings.core.data_dir)
    if migrate:
        await upgrade_async(url, locale=settings.core.default_locale)
    engine = make_engine(url, timeout=settings.core.database_timeout_seconds)
    return Container(
        settings=settings,
        database_url=url,
        engine=engine,
        sessions=make_session_factory(engine),
        passwords=PasswordWorkers(settings.web.password_hash_workers or None),
        embedded_server=server,
    )


async def close_container(c: Container) -> None:
    c.passwords.close()
    await c.engine.dispose()


def build_services(c: Container) -> Container:
    """`c` with its running parts, built (not started) in dependency order."""
    s = c.settings
    # event hub: numbered events in event_log, NOTIFY to every instance, sockets
    hub = EventHub(c.database_url, queue_size=s.notifier.ws_queue_size)
    publish = hub.publish
    # sign-outs: close the sockets of ended sessions, whichever instance ended them
    watch = SessionWatch(c.database_url, c.sessions)
    parts: list[Part] = [hub, watch]
    # call tracking: the AMI listener follows the PBX, in the elected instance only
    # its batches' messages are staged in their own transactions, published after each
    # COMMIT: a crash in between delays them, never loses them (hub.staged); its screen-pops
    # reach this instance's sockets before event_log has numbered them (publish_shown_first)
    tracking = CallTracking(s, c.sessions, hub.staged, publish_pops=hub.publish_shown_first)
    parts.append(tracking)
    election: LeaderElection | None = None
    if s.telephony.ami_enabled:
        election = LeaderElection(
            c.database_url,
            AMI_LISTENER_LOCK,
            tracking.start_following,
            tracking.stop_following,
            name="ami-listener",
        )
        parts.append(election)
    # FastAGI router: Asterisk asks it whom each inbound call rings
    agi = AgiRouting(s, c.database_url) if s.telephony.agi_enabled else None
    if agi is not None:
        parts.append(agi)
    # SMS and email (outbox worker, inbound SMTP): each starts when configured. Their news is
    # written to event_log in their own transactions (hub.transactional), so a crash after the
    # commit cannot lose it; not the call pipeline's (measured slower for pops:
    # bench/event_log_in_transaction_notes.md; it stages instead) nor the requests' (publish,
    # after the commit)
    messaging = Messaging(s, c.database_url, c.sessions, hub.transactional)
    parts.append(messaging)
    # task reminders: one scheduler per instance, each reminder claimed once in the database
    reminders = Reminders(s, c.sessions, hub)
    parts.append(reminders)
    return replace(
        c,
        publish=publish,
        hub=hub,
        session_watch=watch,
        call_tracking=tracking,
        ami_election=election,
        agi_routing=agi,
        messaging=messaging,
        reminders=reminders,
        parts=tuple(parts),
    )


@asynccontextmanager
async def running(c: Container) -> AsyncIterator[Container]:
    """Start `c`'s parts in order; stop the started ones in reverse, whatever happens."""
    started: list[Part] = []
    try:
        for part in c.parts:
            await part.start()
            started.append(part)
        yield c
    finally:
        for part in reversed(started):
            try:
                await part.stop()
            except Exception:
                logger.exception("stopping %s failed", type(part).__name__)
