"""`crm-telephony demo`: embedded PostgreSQL, demo users and clients, and a replayed PBX.

A person starting it sees screen-pops within a minute: the recordings of real Asterisk traffic are
played in a loop (renumbered, shifted to now) into the real listener, as a live PBX would send them.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from datetime import time
from decimal import Decimal
from pathlib import Path

import uvicorn
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
from web.app import create_app
from web.compose import open_container
from web.container import Container
from web.demo_asterisk import DemoCaller, start_kit
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
        logger.info(
            "demo PBX: the router sends %s to %r",
            env["agi_callerid"],
            answer.get("CRM_TARGET", ""),
            extra={"crm_variables": answer},
        )


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
    c = await open_container(settings)
    await seed_demo(c)
    if replay is not None:
        await _play_recordings(settings, replay, speed)
    else:
        caller = DemoCaller(settings.telephony)
        await caller.start()
    app = create_app(container=c)
    host, port = settings.web.http_host, settings.web.http_port
    print(f"\n  CRM telephony demo: http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    print("  Log in as one of:")
    for login, password, role, ext, _name in DEMO_USERS:
        print(
            f"    {login:<12} password {password:<16} {role}{f', extension {ext}' if ext else ''}"
        )
    if kit is not None:
        print(f"  A real Asterisk 22 (the kit, AMI port {kit.ami_port}) calls in by itself.\n")
    else:
        print(f"  A replayed PBX (real Asterisk 22 traffic) calls in a loop at {speed}x speed.\n")
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_config=None, ws_per_message_deflate=False)
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


def run_demo(settings: Settings, speed: float = 1.0, pbx: str = "replay") -> int:
    if not settings.core.database_url and not settings.core.data_dir:
        settings.core.data_dir = str(default_data_dir() / "demo")
    # kept in the demo's data folder like any other; a sample key given is only warned about
    resolve_secret_key(settings, demo=True)
    asyncio.run(_run(settings, speed, pbx))
    return 0
