"""Live service instances for browser tests: real uvicorn on an ephemeral port, real PBX replay.

`live_service(container)` serves `create_app(container=...)` on 127.0.0.1 in the test's event loop
(so the test, the server, the AMI replay and Playwright share one loop and one clock), and waits
until the lifespan has started everything: the event hub listening, the AMI listener logged in.
`headless_chromium()` is Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
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


@asynccontextmanager
async def headless_chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

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
