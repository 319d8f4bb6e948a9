"""`crm-telephony demo`: embedded PostgreSQL, demo users and clients, and a replayed PBX.

A person starting it sees screen-pops within a minute: the recordings of real Asterisk traffic are
played in a loop (renumbered, shifted to now) into the real listener, as a live PBX would send them.
Everything on the pages works: click-to-call plays a real recorded click-to-call (or rings the
kit's Asterisk with `--pbx asterisk`), email goes to a mailbox the demo runs and SMS to a stand-in
for Twilio (web/demo_sinks.py); `GET /api/demo/info` names the log-ins and where to read what
was sent. `--reset` starts afresh from an empty database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
from dataclasses import replace
from datetime import time
from decimal import Decimal
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from crm_core.clients.models import Client, ClientPhone
from crm_core.db import unit_of_work
from crm_core.deals.models import Deal
from crm_core.embedded import default_data_dir
from crm_core.schedules.models import ScheduleInterval
from crm_core.users.models import User
from crm_core.users.security import hash_password
from telephony.agi_client import CommandsAheadOfTurn
from telephony.testing.agi_caller import agi_request_of, ask_route, env_from_event
from telephony.testing.replay import ReplayServer
from web.api import demo as demo_api
from web.app import create_app
from web.compose import open_container
from web.container import Container
from web.demo_asterisk import DemoCaller, start_kit
from web.demo_originate import ReplayedOriginator
from web.demo_sinks import TWILIO_PREFIX, DemoOutbox, SmtpSink, twilio_router
from web.secret_key import resolve_secret_key
from web.settings import Settings

logger = logging.getLogger(__name__)

DEMO_USERS = [
    # login, password, role, extension, name
    ("operator101", "demo101", "operator", "101", "Olga Operator (101)"),
    ("operator102", "demo102", "operator", "102", "Pavel Operator (102)"),
    ("manager", "demo-manager", "manager", "103", "Maria Manager"),
    ("supervisor", "demo-supervisor", "supervisor", None, "Sergey Supervisor"),
    ("admin", "demo-admin", "admin", None, "Anna Admin"),
]
DEMO_CLIENTS = [
    ("Ivan Petrov", "Petrov & Sons", "+79161234567", "Supply contract", Decimal("150000")),
    ("OOO Romashka", "OOO Romashka", "+74957654321", "Office chairs", Decimal("48000")),
    ("Long Talker", None, "+79262223344", "Consulting", Decimal("12000")),
]


def recordings_dir() -> Path | None:
    """The real Asterisk 22 recordings kept in the repository (asterisk/recordings)."""
    folder = Path(__file__).resolve().parents[1] / "asterisk" / "recordings"
    return folder if folder.is_dir() and any(folder.glob("*.ami")) else None


async def seed_demo(c: Container) -> None:
    async with unit_of_work(c.sessions) as s:
        users: dict[str, User] = {}
        for login, password, role, ext, name in DEMO_USERS:
            user = await s.scalar(select(User).where(User.login == login))
            if user is None:
                user = User(login=login, role=role, extension=ext, full_name=name)
                s.add(user)
            user.password_hash = hash_password(password)  # printed below: keep them true
            user.is_active = True
            users[login] = user
        await s.flush()
        for user in users.values():
            if user.extension and not await s.scalar(
                select(ScheduleInterval.id).where(ScheduleInterval.user_id == user.id).limit(1)
            ):
                for day in range(7):  # round the clock, so the demo routes at any hour
                    s.add(
                        ScheduleInterval(
                            user_id=user.id, weekday=day, start_time=time(0), end_time=time(0)
                        )
                    )
        for name, company, phone, deal_title, amount in DEMO_CLIENTS:
            if await s.scalar(select(ClientPhone.id).where(ClientPhone.e164 == phone)):
                continue
            client = Client(
                name=name,
                company=company,
                kind="company" if company == name else "person",
                lead_source="website",
                responsible_id=users["operator101"].id,
                readiness=5,
                phones=[ClientPhone(e164=phone, raw=phone, label="mobile")],
            )
            s.add(client)
            await s.flush()
            s.add(
                Deal(
                    client_id=client.id,
                    title=deal_title,
                    amount=amount,
                    stage_id=2,
                    responsible_id=users["operator101"].id,
                    lead_source="website",
                )
            )


class _AgiCaller:
    """The demo PBX's FastAGI side: where a recording ran `AGI(agi://…/route)`, ask our router
    the same question then, so routing (turns, "next in turn", routed counts) moves live."""

    def __init__(self, host: str, port: int) -> None:
        self._host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        self._port = port
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, event: dict[str, str]) -> None:
        request = agi_request_of(event)
        if request is None:
            return
        task = asyncio.get_running_loop().create_task(self._ask(env_from_event(event, request)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ask(self, env: dict[str, str]) -> None:
        try:
            answer = await ask_route(self._host, self._port, env)
        except (OSError, TimeoutError, CommandsAheadOfTurn) as exc:
            logger.warning("demo PBX: the router did not answer in turn (%s)", exc)
            return
        logger.debug(  # every few seconds, for ever: not for the terminal by default
            "demo PBX: the router sends %s to %r",
            env["agi_callerid"],
            answer.get("CRM_TARGET", ""),
            extra={"crm_variables": answer},
        )


DEMO_MARK = ".crm-telephony-demo"  # a data folder `--reset` may wipe
TWILIO_SID, TWILIO_TOKEN, TWILIO_FROM = "AC" + "0" * 30 + "demo", "demo-token", "+70000000000"


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def use_stand_ins(settings: Settings, sink: SmtpSink) -> None:
    """Email to the demo's mailbox, SMS to its Twilio stand-in: sending works, nobody is sent
    anything, and what was sent is read at /api/demo/messages."""
    n = settings.notifier
    n.smtp_host, n.smtp_port, n.smtp_username, n.smtp_password = sink.host, sink.port, "", ""
    n.twilio_account_sid, n.twilio_auth_token, n.twilio_from_number = (
        TWILIO_SID,
        TWILIO_TOKEN,
        TWILIO_FROM,
    )
    web = f"http://{_loopback(settings.web.http_host)}:{settings.web.http_port}"
    n.twilio_api_base = web + TWILIO_PREFIX
    n.public_base_url = web
    n.outbox_retry_seconds = min(n.outbox_retry_seconds, 2)


def demo_info(settings: Settings, sink: SmtpSink, pbx: str) -> demo_api.DemoInfo:
    return demo_api.DemoInfo(
        logins=[
            demo_api.DemoLogin(
                role=role, login=login, password=password, full_name=name, extension=ext
            )
            for login, password, role, ext, name in DEMO_USERS
        ],
        pbx="asterisk" if pbx == "asterisk" else "replay",
        messages_url=demo_api.MESSAGES_PATH,
        smtp=f"{sink.host}:{sink.port}",
        sms_api=settings.notifier.twilio_api_base,
    )


def mount_demo(app: FastAPI, outbox: DemoOutbox, info: demo_api.DemoInfo) -> None:
    """The demo's own routes: /api/demo/info, /api/demo/messages and the Twilio stand-in."""
    app.state.demo_outbox = outbox
    app.state.demo_info = info
    app.include_router(demo_api.router)
    app.include_router(twilio_router)


def login_box(base: str, info: demo_api.DemoInfo, pbx_line: str) -> str:
    """What the terminal shows once the demo listens: the address and the log-ins, boxed, so
    they are found above the log lines that follow."""
    lines = [
        f"CRM telephony demo: {base}/   (API docs: {base}/docs)",
        "Log in as one of:",
        *(
            f"  {x.login:<12} password {x.password:<16} {x.role}"
            + (f", extension {x.extension}" if x.extension else "")
            for x in info.logins
        ),
        pbx_line,
        f"Emails and SMS sent from the cards: {base}{info.messages_url}",
    ]
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 2) + "+"
    return "\n".join([rule, *(f"| {line:<{width}} |" for line in lines), rule])


class _BoxedServer(uvicorn.Server):
    """uvicorn that shows the log-in box once it listens, after its own start-up lines."""

    def __init__(self, config: uvicorn.Config, box: str) -> None:
        super().__init__(config)
        self._box = box

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print("\n" + self._box + "\n", flush=True)


async def _run(settings: Settings, speed: float, pbx: str) -> None:
    settings.telephony.ami_host = "127.0.0.1"
    settings.telephony.ami_enabled = True
    kit = None
    if pbx == "asterisk":
        kit = await start_kit(
            Path(tempfile.mkdtemp(prefix="crm-demo-pbx-")), settings.telephony.agi_port
        )
        if kit is None:
            logger.warning("demo: falling back to the replayed PBX")
    replay: ReplayServer | None = None
    caller: DemoCaller | None = None
    if kit is not None:
        settings.telephony.ami_port = kit.ami_port
        settings.telephony.originate_channel = "Local/{ext}@agent-phones"  # the kit's phones
        if settings.web.recordings_dir is None and not settings.web.recordings_url_template:
            settings.web.recordings_dir = kit.rundir / "recordings"  # MixMonitor writes there
            settings.web.recordings_pbx_dir = str(kit.rundir / "recordings")
    else:
        replay = ReplayServer(
            "127.0.0.1", 0, settings.telephony.ami_username, settings.telephony.ami_secret
        )
        await replay.start()
        settings.telephony.ami_port = replay.port
    outbox = DemoOutbox()
    sink = SmtpSink(outbox)
    await sink.start()
    use_stand_ins(settings, sink)
    c = await open_container(settings)
    await seed_demo(c)
    if replay is not None:
        await _play_recordings(settings, replay, speed)
        folder = recordings_dir()
        if folder is not None:  # click-to-call plays the recorded one (web/demo_originate.py)
            c = replace(c, originator=ReplayedOriginator(replay, folder, speed))
    else:
        caller = DemoCaller(settings.telephony)
        await caller.start()
    app = create_app(container=c)
    info = demo_info(settings, sink, "asterisk" if kit is not None else "replay")
    mount_demo(app, outbox, info)
    host, port = settings.web.http_host, settings.web.http_port
    if kit is not None:
        pbx_line = f"A real Asterisk 22 (the kit, AMI port {kit.ami_port}) calls in by itself."
    else:
        pbx_line = f"A replayed PBX (real Asterisk 22 traffic) calls in a loop at {speed}x speed."
    box = login_box(f"http://{_loopback(host)}:{port}", info, pbx_line)
    server = _BoxedServer(
        uvicorn.Config(app, host=host, port=port, log_config=None, ws_per_message_deflate=False),
        box,
    )
    try:
        await server.serve()
    finally:
        if caller is not None:
            await caller.close()
        if replay is not None:
            await replay.close()
        if kit is not None:
            await asyncio.to_thread(kit.stop)
        await sink.stop()
        await c.engine.dispose()


async def _play_recordings(settings: Settings, replay: ReplayServer, speed: float) -> None:
    if settings.telephony.agi_enabled:
        replay.on_event = _AgiCaller(settings.telephony.agi_host, settings.telephony.agi_port)
    folder = recordings_dir()
    if folder is None:
        logger.warning("no AMI recordings found: the demo PBX stays silent")
        return
    files = sorted(folder.glob("*.ami"))
    if settings.web.recordings_dir is None and not settings.web.recordings_url_template:
        # the WAV files MixMonitor wrote during the recorded calls lie beside them
        settings.web.recordings_dir = folder
    await replay.play(files, speed=speed, loop=True, shift_to_now=True, renumber=True, gap=4)


class ResetRefused(Exception):
    """`--reset` would wipe something that is not the demo's own."""


def demo_data_dir(settings: Settings) -> Path:
    return Path(settings.core.data_dir) if settings.core.data_dir else default_data_dir() / "demo"


def reset_demo(settings: Settings) -> Path:
    """Wipe the demo's data folder (its embedded database, its secret key): the next start
    seeds it afresh. Refused for a DATABASE_URL, a folder the demo did not make, and a database
    still running there."""
    if settings.core.database_url:
        raise ResetRefused("--reset wipes the demo's embedded database only: DATABASE_URL is set")
    folder = demo_data_dir(settings)
    if not folder.exists():
        return folder
    if folder != default_data_dir() / "demo" and not (folder / DEMO_MARK).exists():
        raise ResetRefused(f"{folder} is not a folder the demo made: not wiping it")
    pid_file = folder / "pgdata" / "postmaster.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text().split("\n", 1)[0] or 0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            pass  # a stale pid file: the server is gone
        except PermissionError:
            raise ResetRefused(f"a database still runs in {folder} (pid {pid})") from None
        else:
            raise ResetRefused(f"a database still runs in {folder} (pid {pid}): stop it first")
    shutil.rmtree(folder)
    logger.info("demo: wiped %s, starting afresh", folder)
    return folder


def run_demo(
    settings: Settings, speed: float = 1.0, pbx: str = "replay", reset: bool = False
) -> int:
    if not settings.core.database_url and not settings.core.data_dir:
        settings.core.data_dir = str(default_data_dir() / "demo")
    if reset:
        reset_demo(settings)
    folder = demo_data_dir(settings)
    if not settings.core.database_url and (not folder.exists() or not any(folder.iterdir())):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / DEMO_MARK).touch()  # made by the demo: --reset may wipe it
    # kept in the demo's data folder like any other; a sample key given is only warned about
    resolve_secret_key(settings, demo=True)
    asyncio.run(_run(settings, speed, pbx))
    return 0
