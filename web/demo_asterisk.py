"""`crm-telephony demo --pbx asterisk`: the demo on a real Asterisk 22 that calls in by itself.

Where the source checkout has the kit (asterisk/kit) and its Asterisk is built (`make asterisk`),
the demo can follow a real PBX instead of replayed traffic: the kit's Asterisk runs beside the
service, its dialplan asks our FastAGI router whom to ring, and a small caller below makes an
outside call every few seconds by AMI Originate: a known client, an unknown number, the ring
group, and a caller who gives up before anyone answers. The kit's phones 101-103 answer by
themselves, so the demo operators (101, 102) and the manager (103) see real screen-pops.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from telephony.ami_listener import AmiError, AmiEvent, AmiListener
from telephony.asterisk_kit import Kit, available, build
from telephony.settings import TelephonySettings

logger = logging.getLogger(__name__)

DID = "84951112233"
RING_GROUP_DID = "84951110002"
PHONES = ("101", "102", "103")


@dataclass(frozen=True, slots=True)
class DemoCall:
    caller: str
    name: str
    did: str = DID
    talk_s: int = 25  # the caller stays this long; the phones hang up after AGENT_TALK_S
    nobody_answers: bool = False  # the phones ring without answering: a missed call


AGENT_TALK_S = "12"
CALLS = (
    DemoCall("+79161234567", "Ivan Petrov"),  # a client of the demo: their manager first
    DemoCall("", "New caller"),  # an unknown number: a new card and deal, round-robin
    DemoCall("+74957654321", "OOO Romashka", did=RING_GROUP_DID),
    DemoCall("+79262223344", "Long Talker", talk_s=8, nobody_answers=True),
)


async def start_kit(folder: Path, agi_port: int) -> Kit | None:
    """The kit's Asterisk on a free AMI port, asking our router on `agi_port`; None without
    the kit (an installed package) or when it can't be built or started here."""
    if not available():
        logger.warning("demo: no asterisk/kit here (not a source checkout)")
        return None
    try:
        prefix = await asyncio.to_thread(build)
        kit = Kit(folder, prefix, agi_port=agi_port)
        await asyncio.to_thread(kit.start)
    except (OSError, RuntimeError) as exc:
        logger.warning("demo: the kit's Asterisk did not start (%s)", exc)
        return None
    return kit


class DemoCaller:
    """Makes one demo call every `every` seconds on the kit's Asterisk, round the list."""

    def __init__(self, settings: TelephonySettings, every: float = 20.0) -> None:
        self._listener = AmiListener(settings, self._ignore)
        self._every = every
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    async def _ignore(event: AmiEvent, arrival: float) -> None:
        return None

    async def start(self) -> None:
        await self._listener.start()
        self._task = asyncio.create_task(self._loop(), name="demo-caller")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._listener.close(drain_timeout=1)

    async def _action(self, fields: dict[str, str]) -> None:
        await self._listener.send_action(fields, timeout=10)

    async def _flags(self, family: str, on: bool) -> None:
        for phone in PHONES:
            if on:
                await self._action({"Action": "DBPut", "Family": family, "Key": phone, "Val": "1"})
            else:
                await self._action({"Action": "DBDel", "Family": family, "Key": phone})

    async def _loop(self) -> None:
        async with asyncio.timeout(60):
            await self._listener.wait_connected()
        for phone in PHONES:  # short calls, so the board keeps moving
            await self._action(
                {"Action": "DBPut", "Family": "agenttalk", "Key": phone, "Val": AGENT_TALK_S}
            )
        rnd = random.Random()
        for call in itertools.cycle(CALLS):
            try:
                await self._place(call, rnd)
            except AmiError as exc:
                logger.warning("demo caller: %s", exc)
            await asyncio.sleep(self._every)

    async def _place(self, call: DemoCall, rnd: random.Random) -> None:
        caller = call.caller or f"+7925{rnd.randrange(10**7):07d}"
        if call.nobody_answers:
            await self._flags("noanswer", on=True)
        await self._action(
            {
                "Action": "Originate",
                "Channel": "Local/s@caller-sim",
                "Context": "from-pstn",
                "Exten": call.did,
                "Priority": "1",
                "CallerID": f'"{call.name}" <{caller}>',
                "Variable": f"TALK={call.talk_s}",
                "Async": "true",
            }
        )
        logger.info("demo caller: %s calls %s", caller, call.did)
        if call.nobody_answers:  # until the caller gives up
            await asyncio.sleep(call.talk_s + 2)
            await self._flags("noanswer", on=False)
