"""The FastAPI application: routes, pages, and the lifespan owning every long-lived task."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from notifier.hub import EventHub  # event hub (issue 5)
from notifier.leader import LeaderElection, lock_key
from web import docs_pages, errors, health, pages_routes
from web import webhooks as twilio_webhooks  # SMS and email: Twilio webhooks
from web import ws as events_ws  # event hub (issue 5)
from web.api import auth, calls, clients, communications, deals, reports, schedules, tasks, users
from web.api import events_schema as events_schema_api  # what /ws sends (GET /api/events/schema)
from web.api import messages as messages_api  # SMS and email: send from the card
from web.api import plans as plans_api  # sales plans (issue 16)
from web.api import presence as presence_api  # agent presence (issue 16)
from web.api import recordings as recordings_api
from web.api import routing as routing_api
from web.body_auth import BodyAuth, is_public
from web.body_limit import BodyLimit
from web.container import Container
from web.messaging_runtime import Messaging  # SMS and email (outbox worker, inbound SMTP)
from web.routing_runtime import AgiRouting
from web.runtime import build_container, close_container
from web.secret_key import resolve_secret_key
from web.security_headers import SecurityHeaders, content_security_policy, origin_of
from web.session_watch import SessionWatch
from web.settings import Settings
from web.telephony_runtime import CallTracking

logger = logging.getLogger(__name__)


def settle_heap() -> None:
    """Move everything loaded at start-up out of the garbage collector's sight (`gc.freeze`).

    The modules, metadata and caches loaded at start-up are hundreds of thousands of objects
    that live as long as the process; every full collection walks them all again, a pause of
    tens of milliseconds landing on whatever call is in flight (bench/agi_bench.py saw 40–56 ms
    bursts from exactly this). Frozen, collections only walk what was allocated since.
    """
    gc.collect()
    gc.freeze()


def body_limit_for(settings: Settings) -> Callable[[str], int]:
    """MAX_BODY_BYTES for signed-in routes, PUBLIC_MAX_BODY_BYTES for the ones without a token."""
    web = settings.web

    def limit(path: str) -> int:
        return web.public_max_body_bytes if is_public(path) else web.max_body_bytes

    return limit


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """An app for `settings`; with `container` given (tests), it uses that and does not own it."""
    settings = settings or (container.settings if container else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        if owned:
            # before anything listens: a sample or short key would let anyone mint tokens
            resolve_secret_key(settings)
        c = container or await build_container(settings)
        app.state.container = c
        # event hub (issue 5): numbered events in event_log, NOTIFY to every instance, sockets
        hub = EventHub(c.database_url, queue_size=settings.notifier.ws_queue_size)
        await hub.start()
        c.extras["hub"] = hub
        c.publish = hub.publish
        # sign-outs: close the sockets of ended sessions, whichever instance ended them
        watch = SessionWatch(c.database_url, c.sessions)
        await watch.start()
        c.extras["session_watch"] = watch
        # call tracking (issue 4): the AMI listener follows the PBX, in the elected instance only
        tracking = CallTracking(c)
        c.extras["tracking"] = tracking
        election = LeaderElection(
            c.database_url,
            lock_key("crm-telephony:ami-listener"),
            tracking.start_following,
            tracking.stop_following,
            name="ami-listener",
        )
        c.extras["election"] = election
        if settings.telephony.ami_enabled:
            await election.start()
        # FastAGI router (issue 6): Asterisk asks it whom each inbound call rings
        agi = AgiRouting(c)
        c.extras["agi"] = agi
        if settings.telephony.agi_enabled:
            await agi.start()
        # SMS and email (outbox worker, inbound SMTP): each starts when configured
        messaging = Messaging(c)
        c.extras["messaging"] = messaging
        await messaging.start()
        if owned:
            settle_heap()
        try:
            yield
        finally:
            await messaging.stop()  # SMS and email (outbox worker, inbound SMTP)
            await agi.stop()  # FastAGI router (issue 6)
            await election.stop()
            await tracking.stop_following()
            await watch.stop()
            await hub.stop()  # event hub (issue 5)
            if owned:
                await close_container(c)

    app = FastAPI(
        title="CRM telephony",
        version="0.1.0",
        description="Asterisk PBX integration for a sales CRM: calls, SMS and email on the deal.",
        lifespan=lifespan,
        docs_url=None,  # served by web.docs_pages, from local files
        redoc_url=None,
    )
    if container is not None:
        app.state.container = container
    errors.install(app)
    # added last = runs first: a too-large body is refused before the token is even looked up
    app.add_middleware(BodyAuth)
    app.add_middleware(BodyLimit, limit_for=body_limit_for(settings))
    # added after them = runs before them: every answer, a 413 or 401 too, carries the headers
    app.add_middleware(
        SecurityHeaders,
        policy=content_security_policy(origin_of(settings.web.recordings_url_template)),
    )
    docs_pages.install(app)
    app.include_router(health.router)  # the database and which parts are down
    for module in (auth, users, clients, deals, communications, tasks, schedules, calls, reports):
        app.include_router(module.router)
    app.include_router(events_ws.router)  # event hub (issue 5): /ws and /api/events
    app.include_router(events_schema_api.router)
    app.include_router(recordings_api.router)  # call recordings: the player's link and audio

    # SMS and email: sending from the card, Twilio's inbound SMS and status webhooks
    app.include_router(messages_api.router)
    app.include_router(twilio_webhooks.router)

    # FastAGI router (issue 6): status API
    app.include_router(routing_api.router)
    app.include_router(presence_api.router)  # agent presence (issue 16)
    app.include_router(plans_api.router)  # sales plans (issue 16)

    # the pages (web/pages_routes.py: one row per page) and their static files
    pages_routes.install(app)

    return app
