"""Live service instances for browser tests: real uvicorn on an ephemeral port, real PBX replay.

`live_service(container)` serves `create_app(container=...)` on 127.0.0.1 in the test's event loop
(so the test, the server, the AMI replay and Playwright share one loop and one clock), and waits
until the lifespan has started everything: the event hub listening, the AMI listener logged in.
`headless_chromium()` is Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from crm_core.db import make_engine, make_session_factory
from telephony.testing.replay import ReplayServer
from tests.telephony.pbx import ami_settings
from web.app import create_app
from web.container import Container
from web.settings import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


@dataclass
class LiveService:
    url: str
    port: int
    app: FastAPI
    container: Container
    server: uvicorn.Server

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def running(self) -> Container:
        """The container as the lifespan composed it, with its running parts."""
        c: Container = self.app.state.container
        return c

    @property
    def hub(self) -> Any:
        return self.running.hub

    @property
    def tracking(self) -> Any:
        return self.running.call_tracking


@asynccontextmanager
async def live_service(
    container: Container, *, ready_timeout: float = 15, port: int = 0
) -> AsyncIterator[LiveService]:
    app = create_app(container=container)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        lifespan="on",
        ws_per_message_deflate=False,
    )
    server = uvicorn.Server(config)
    # uvicorn would take over SIGINT/SIGTERM of the test process: leave them to pytest
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(), name="live-uvicorn")
    try:
        async with asyncio.timeout(ready_timeout):
            while not server.started:
                if task.done():
                    task.result()  # the startup failed: raise its error
                    raise RuntimeError("uvicorn stopped during startup")
                await asyncio.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            running: Container = app.state.container
            if running.hub is not None:
                await running.hub.wait_ready()
            tracking = running.call_tracking
            if tracking is not None and tracking.listener is not None:
                await tracking.listener.wait_connected()
        yield LiveService(f"http://127.0.0.1:{port}", port, app, container, server)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 10)
        if not task.done():
            task.cancel()


async def drain(
    ws: Any, *, until: str | Callable[[dict[str, Any]], bool], limit: float = 30
) -> list[dict[str, Any]]:
    """A websocket's messages up to and including the first that is of type `until` (or for
    which `until(message)` holds), pings answered and left out."""
    last = until if callable(until) else (lambda msg: msg.get("type") == until)
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(limit):
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong"}))
                continue
            got.append(msg)
            if last(msg):
                return got


def with_ami(settings: Settings, replay: ReplayServer) -> Settings:
    """`settings` following the replayed PBX (as `crm-telephony demo` does), no FastAGI."""
    settings.telephony = ami_settings(replay.port, AMI_ENABLED=True, AGI_ENABLED=False)
    return settings


@asynccontextmanager
async def second_container(settings: Settings) -> AsyncIterator[Container]:
    """Another instance's parts on the same database: its own engine, no PBX."""
    other = Settings(core=settings.core, notifier=settings.notifier, web=settings.web)
    other.telephony = ami_settings(1, AMI_ENABLED=False, AGI_ENABLED=False)
    engine = make_engine(settings.core.database_url)
    try:
        yield Container(
            settings=other,
            database_url=settings.core.database_url,
            engine=engine,
            sessions=make_session_factory(engine),
        )
    finally:
        await engine.dispose()


# How long `expect(...)` waits for a page to get there (Playwright's default is 5 s): two cores
# shared by many processes may take seconds; no test asserts a timing
EXPECT_TIMEOUT_MS = 15_000


@asynccontextmanager
async def headless_chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def watch_errors(page: Any, errors: list[str]) -> None:
    """Collect the page's JavaScript errors and every Content-Security-Policy violation (the
    browser blocks the script or style and logs it to the console, raising no page error)."""
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))

    def console(message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            errors.append(f"{page.url}: {message.text}")

    page.on("console", console)


async def sign_in(
    page: Any, live: LiveService, credentials: tuple[str, str], lands: str = "/operator"
) -> None:
    """Through the sign-in page at `/`, which sends staff to the board and others to work."""
    await page.goto(live.url + "/")
    await page.fill("#login", credentials[0])
    await page.fill("#password", credentials[1])
    await page.click("#login-submit")
    await page.wait_for_url(f"**{lands}")


async def change_storage(page: Any, live: LiveService, script: str, arg: Any = None) -> None:
    """Run `script` on the service's localStorage from a page that runs no script of its own: a
    page of ours, seeing its token change, would go elsewhere by itself (the sign-in page to the
    user's home, a board to `/` on a stale token), and that could land after the test's next
    `goto` (or abort it)."""
    await page.goto(live.url + "/static/app.css")
    await page.evaluate(script, arg)


async def open_signed_in(page: Any, live: LiveService, headers: dict[str, str], path: str) -> None:
    """`path` opened by a browser holding the token of `headers` where the sign-in page puts it."""
    token = headers["Authorization"].removeprefix("Bearer ")
    await change_storage(page, live, "t => localStorage.setItem('crm_token', t)", token)
    await page.goto(live.url + path)


async def sign_in_at_desk(page: Any, live: LiveService, credentials: tuple[str, str]) -> None:
    """Signed in at the operator's workspace, its socket open."""
    from playwright.async_api import expect

    await sign_in(page, live, credentials)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open")


class Contexts:
    """Fresh browser contexts (each its own storage: its own signed-in person, language and
    screen), every page watched for JavaScript errors."""

    def __init__(self, browser: Any, *, viewport: dict[str, int], timeout_ms: int) -> None:
        self.browser = browser
        self.viewport = viewport
        self.timeout_ms = timeout_ms
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    async def page(
        self, *, locale: str | None = None, viewport: dict[str, int] | None = None
    ) -> Any:
        options: dict[str, Any] = {"viewport": viewport or self.viewport}
        if locale is not None:
            options["locale"] = locale
        context = await self.browser.new_context(**options)
        self.contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(self.timeout_ms)
        watch_errors(page, self.errors)
        return page


@asynccontextmanager
async def fresh_contexts(
    browser: Any, *, viewport: dict[str, int], timeout_ms: int
) -> AsyncIterator[Contexts]:
    """Contexts for one test; closed after it, which then fails on any JavaScript error."""
    contexts = Contexts(browser, viewport=viewport, timeout_ms=timeout_ms)
    yield contexts
    for context in contexts.contexts:
        await context.close()
    assert not contexts.errors, f"JavaScript errors on the pages: {contexts.errors}"
