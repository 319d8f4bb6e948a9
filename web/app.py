"""The FastAPI application: routes, pages, and the lifespan owning every long-lived task."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from web import docs_pages, errors, health, pages_routes
from web import webhooks as twilio_webhooks
from web import ws as events_ws
from web.api import auth, calls, clients, communications, deals, reports, schedules, tasks, users
from web.api import channels as channels_api  # which of SMS and email work
from web.api import deal_admin as deal_admin_api  # stages and the deal forms' lists
from web.api import events_schema as events_schema_api
from web.api import messages as messages_api
from web.api import plans as plans_api  # sales plans
from web.api import presence as presence_api  # agent presence
from web.api import recordings as recordings_api
from web.api import routing as routing_api
from web.api import workspace as workspace_api  # agenda: missed/recent calls, results, comments
from web.body_auth import BodyAuth, is_public
from web.body_limit import BodyLimit
from web.compose import build_services, close_container, open_container, running
from web.container import Container
from web.secret_key import resolve_secret_key
from web.security_headers import SecurityHeaders, content_security_policy, origin_of
from web.settings import Settings

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


# Every API router, in the order /docs lists them; a feature adds its own line.
ROUTERS: list[APIRouter] = [
    health.router,  # the database and which parts are down
    auth.router,
    users.router,
    clients.router,
    deals.router,
    communications.router,
    tasks.router,
    schedules.router,
    calls.router,
    reports.router,
    events_ws.router,  # /ws and /api/events (the event hub)
    events_schema_api.router,  # what /ws sends (GET /api/events/schema)
    deal_admin_api.router,  # deal stages and the deal forms' lists (admins)
    recordings_api.router,  # call recordings: the player's link and audio
    messages_api.router,  # SMS and email sent from the card
    channels_api.router,  # which of SMS and email work, before Send
    twilio_webhooks.router,  # Twilio's inbound SMS and status webhooks
    routing_api.router,  # FastAGI router status and schedules
    presence_api.router,  # agent presence: available, paused, DND, wrap-up
    plans_api.router,  # sales plans per manager and month
    workspace_api.router,  # the agenda's missed and recent calls, results, comments, merging
]


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """An app for `settings`; with `container` given (tests), it uses that and does not own it."""
    settings = settings or (container.settings if container else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = container is None
        if owned:
            # before anything listens: a sample or short key would let anyone mint tokens
            resolve_secret_key(settings)
        c = build_services(container or await open_container(settings))
        app.state.container = c
        try:
            async with running(c):
                if owned:
                    settle_heap()
                yield
        finally:
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
    for router in ROUTERS:
        app.include_router(router)

    # the pages (web/pages_routes.py: one row per page) and their static files
    pages_routes.install(app)

    return app
