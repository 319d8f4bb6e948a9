"""The real Asterisk of the live tests: the kit's run.sh on free ports, and a raw AMI connection.

`Kit` (telephony/asterisk_kit.py) starts and stops one Asterisk 22 in its own RUNDIR. `RawAmi`
is the test's own AMI session, separate from the service's: it places calls by real AMI actions
(Originate, BlindTransfer, Atxfer, DBPut…) and keeps every event it sees, with its local arrival
time, so a test can wait for what the PBX did instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from telephony.ami_wire import (
    AmiEvent,
    AmiFramer,
    AmiMessage,
    action_headers,
    parse_message,
    serialize,
)

USER, SECRET = "crm", "crmsecret"
DID = "84951112233"  # any DID but the ring group goes through our router
RING_GROUP_DID = "84951110002"

Event = dict[str, str]
Predicate = Callable[[Event], bool]


class RawAmi:
    """A minimal AMI session of the test's own: actions by ActionID, every event kept."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.events: list[Event] = []
        self._pending: dict[str, asyncio.Future[AmiMessage]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        banner = await asyncio.wait_for(self._reader.readline(), 30)
        assert banner.startswith(b"Asterisk Call Manager"), banner
        self._task = asyncio.create_task(self._read(), name="raw-ami")
        reply = await self.action("Login", Username=USER, Secret=SECRET, Events="on")
        assert reply.get("Response") == "Success", reply

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    @property
    def connected(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _read(self) -> None:
        assert self._reader is not None
        framer = AmiFramer(parse_message, banner=False)  # connect() read the banner
        while True:
            data = await self._reader.read(65536)
            if not data:
                break
            for msg in framer.feed(data):
                if isinstance(msg, AmiEvent):
                    self.events.append({**msg, "_arrival": repr(time.monotonic())})
                    self._changed.set()
                elif isinstance(msg, AmiMessage) and msg.get("ActionID") in self._pending:
                    future = self._pending.pop(msg["ActionID"])
                    if not future.done():
                        future.set_result(msg)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("AMI connection closed"))
        self._changed.set()

    async def action(self, name: str, **fields: str | list[str]) -> AmiMessage:
        assert self._writer is not None
        action_id = f"live-{next(self._ids)}"
        future: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        headers = action_headers({"Action": name, "ActionID": action_id, **fields})
        self._writer.write(serialize(headers))
        await self._writer.drain()
        return await asyncio.wait_for(future, 30)

    async def ok(self, name: str, **fields: str | list[str]) -> AmiMessage:
        reply = await self.action(name, **fields)
        assert reply.get("Response") == "Success", (name, fields, reply)
        return reply

    def mark(self) -> int:
        return len(self.events)

    def seen(self, pred: Predicate, since: int = 0) -> list[Event]:
        return [e for e in self.events[since:] if pred(e)]

    async def wait_for(self, pred: Predicate, since: int = 0, timeout: float = 60) -> Event:
        """The first event after index `since` that `pred` accepts."""
        i = since
        async with asyncio.timeout(timeout):
            while True:
                while i < len(self.events):
                    if pred(self.events[i]):
                        return self.events[i]
                    i += 1
                if not self.connected:
                    raise ConnectionError("AMI connection closed while waiting")
                self._changed.clear()
                await self._changed.wait()

    async def db_put(self, family: str, key: str, value: str) -> None:
        await self.ok("DBPut", Family=family, Key=key, Val=value)

    async def db_del(self, family: str, key: str) -> None:
        await self.action("DBDel", Family=family, Key=key)  # Error when absent: fine

    async def command(self, cli: str) -> str:
        reply = await self.ok("Command", Command=cli)
        return "\n".join(reply.get_all("Output"))

    async def active_channels(self) -> int:
        out = await self.command("core show channels count")
        found = re.search(r"(\d+) active channels?", out)
        assert found, out
        return int(found.group(1))

    async def wait_idle(self, timeout: float = 90) -> None:
        """Until Asterisk has no channel at all (`core show channels count` says 0)."""
        async with asyncio.timeout(timeout):
            while await self.active_channels():
                await asyncio.sleep(0.3)


def event(name: str, **match: str) -> Predicate:
    """An event named `name` whose fields start with the given values."""

    def pred(e: Event) -> bool:
        return e.get("Event") == name and all(e.get(k, "").startswith(v) for k, v in match.items())

    return pred


def arrival(e: Event) -> float:
    return float(e["_arrival"])


# --- the kinds of calls, as Originate fields ---------------------------------------------------


def inbound(caller: str, did: str = DID, talk: int = 8, name: str = "Caller") -> dict[str, Any]:
    """An outside caller dialling `did`: Local/s@caller-sim's ;1 enters from-pstn, the ;2 half
    answers and stays `talk` seconds, then hangs up."""
    return {
        "Channel": "Local/s@caller-sim",
        "Context": "from-pstn",
        "Exten": did,
        "Priority": "1",
        "CallerID": f'"{name}" <{caller}>',
        "Async": "true",
        "Variable": f"TALK={talk}",
    }


def agent_dial_out(agent: str, number: str) -> dict[str, Any]:
    """The agent's phone dials `number` by itself (from-internal): no CRM variables."""
    return {
        "Channel": f"Local/{agent}@agent-phones",
        "Context": "from-internal",
        "Exten": number,
        "Priority": "1",
        "CallerID": f'"Agent {agent}" <{agent}>',
        "Async": "true",
        "Timeout": "30000",
    }


def caller_channel(caller: str) -> Predicate:
    """Any event of the simulated caller `caller`'s ;1 channel once its caller ID is set."""

    def pred(e: Event) -> bool:
        return (
            e.get("Channel", "").startswith("Local/s@caller-sim-")
            and e.get("Channel", "").endswith(";1")
            and e.get("CallerIDNum") == caller
            and "Linkedid" in e
        )

    return pred


def names(events: Iterable[Event]) -> list[str]:
    return [e["Event"] for e in events]
