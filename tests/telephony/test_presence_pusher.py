"""Wrap-up at the PBX, through the pusher the AMI leader runs, with a fake AMI recording what it
is sent and the real database: a wrap-up pauses the agent's queue memberships under the reason
"wrap-up" and unpauses them at its end; ended early or superseded, the PBX follows; the PBX's
echo of the wrap-up pause leaves the wrap-up as it is; a new leader picks up running wrap-ups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.db import unit_of_work
from crm_core.models_common import utcnow
from crm_core.presence import service as presence
from crm_core.presence.models import AgentPresence
from crm_core.users.models import User
from crm_core.users.service import users_by_extension
from telephony.presence_events import PresenceFromPbx
from telephony.presence_pusher import PresencePusher
from tests.conftest import UserFactory

pytestmark = pytest.mark.usefixtures("db")

IFACE = "Local/101@agent-phones/n"
WAIT = 30.0  # seconds: generous, for a loaded machine; the outcome ends the wait


class FakeAmi:
    """The AMI leader's connection: queue `sales` has 101 and 102; every action recorded."""

    connected = True

    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    async def wait_connected(self) -> None:
        return None

    async def send_action(
        self,
        action: dict[str, str],
        *,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        self.sent.append(dict(action))
        if action["Action"] == "QueueStatus":
            return [
                {"Response": "Success", "EventList": "start"},
                {"Event": "QueueMember", "Queue": "sales", "Location": IFACE},
                {"Event": "QueueMember", "Queue": "sales", "Location": "Local/102@agent-phones/n"},
                {"Event": "QueueStatusComplete"},
            ]
        return [{"Response": "Success"}]

    def pauses(self) -> list[tuple[str, str | None]]:
        """(Paused, Reason) of every QueuePause sent, in order (all to 101's membership)."""
        out = []
        for a in self.sent:
            if a["Action"] == "QueuePause":
                assert a["Interface"] == IFACE
                out.append((a["Paused"], a.get("Reason")))
        return out

    async def wait_pauses(self, n: int) -> list[tuple[str, str | None]]:
        async with asyncio.timeout(WAIT):
            while len(self.pauses()) < n:
                await asyncio.sleep(0.02)
        return self.pauses()


@pytest.fixture
def pbx() -> FakeAmi:
    return FakeAmi()


@pytest.fixture
async def pusher(
    pbx: FakeAmi, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[PresencePusher]:
    p = PresencePusher(pbx, sessions)
    p.start()
    try:
        yield p
    finally:
        await p.stop()


def publisher(pusher: PresencePusher) -> Callable[[list[Any]], Any]:
    """The leader's publisher as CallTracking wires it: committed changes reach the pusher."""

    async def publish(events: list[Any]) -> None:
        pusher.changed(events)

    return publish


async def start_wrapup(
    sessions: async_sessionmaker[AsyncSession], pusher: PresencePusher | None, seconds: float
) -> None:
    """An answered call by 101 just ended (as the call pipeline's hook does it)."""
    now = utcnow()
    publish = publisher(pusher) if pusher is not None else None
    async with unit_of_work(sessions, publish) as s:
        assert await presence.start_wrapup(
            s, ["101"], now, seconds, now, on=await users_by_extension(s, ["101"])
        )


async def set_state(
    sessions: async_sessionmaker[AsyncSession],
    user_id: int,
    state: str,
    reason: str | None,
    pusher: PresencePusher | None,
) -> None:
    """The agent's choice, as the API makes it: committed, then handed to the pusher if this
    instance has one (None: another instance's API, unheard here)."""
    async with unit_of_work(sessions) as s:
        user = await s.get(User, user_id)
        assert user is not None and user.extension is not None
        p, changed = await presence.set_state(s, user, state, reason, utcnow())
    if pusher is not None and changed:
        pusher.push(user_id, user.extension, p.state, p.reason)


async def test_a_wrapup_pauses_the_queue_and_unpauses_it_at_its_end(
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    pbx: FakeAmi,
    pusher: PresencePusher,
) -> None:
    a101, _ = await make_user(role="operator", extension="101")
    await start_wrapup(sessions, pusher, seconds=1.5)
    assert await pbx.wait_pauses(1) == [("true", "wrap-up")]

    # the PBX's echo of our pause: still in wrap-up, not "paused"
    echo = {
        "Event": "QueueMemberPause",
        "Queue": "sales",
        "Interface": IFACE,
        "Paused": "1",
        "PausedReason": "wrap-up",
    }
    await PresenceFromPbx(sessions, None).on_event(echo)
    async with sessions() as s:
        row = await s.get(AgentPresence, a101.id)
        assert row is not None and (row.state, row.source) == ("wrapup", "call")

    # on time: unpaused, and nothing more
    assert await pbx.wait_pauses(2) == [("true", "wrap-up"), ("false", None)]
    await pusher.idle()
    assert pusher.stats == {"pushed": 1, "wrapups_over": 1, "failed": 0}
    # the echo of the unpause finds the agent available: no change
    await PresenceFromPbx(sessions, None).on_event({**echo, "Paused": "0", "PausedReason": ""})
    async with sessions() as s:
        row = await s.get(AgentPresence, a101.id)
        assert row is not None and row.state == "wrapup" and row.until is not None
        assert row.until <= utcnow()  # over by its time, nobody wrote


async def test_ended_early_or_superseded_the_pbx_follows(
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    pbx: FakeAmi,
    pusher: PresencePusher,
) -> None:
    a101, _ = await make_user(role="operator", extension="101")
    # a long wrap-up: every unpause below is the agent's doing, none its end's
    await start_wrapup(sessions, pusher, seconds=600)
    await set_state(sessions, a101.id, "available", None, pusher)
    assert await pbx.wait_pauses(2) == [("true", "wrap-up"), ("false", None)]

    # another call, another wrap-up, superseded by a lunch break: paused under the new reason
    await start_wrapup(sessions, pusher, seconds=600)
    await set_state(sessions, a101.id, "paused", "lunch", pusher)
    assert (await pbx.wait_pauses(4))[2:] == [("true", "wrap-up"), ("true", "lunch")]
    await pusher.idle()
    assert pusher.stats["failed"] == 0


async def test_at_the_end_of_a_wrapup_the_stored_presence_decides(
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    pbx: FakeAmi,
    pusher: PresencePusher,
) -> None:
    """Changed meanwhile where the pusher did not hear it (another instance's API): at the
    wrap-up's end the PBX is told what stands, not blindly unpaused."""
    a101, _ = await make_user(role="operator", extension="101")
    await start_wrapup(sessions, pusher, seconds=1.5)
    await set_state(sessions, a101.id, "dnd", None, None)  # unheard by this pusher
    assert await pbx.wait_pauses(2) == [("true", "wrap-up"), ("true", "dnd")]
    await pusher.idle()
    assert pusher.stats["wrapups_over"] == 1


async def test_a_new_leader_ends_the_wrapups_already_running(
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    pbx: FakeAmi,
    pusher: PresencePusher,
) -> None:
    await make_user(role="operator", extension="101")
    other, _ = await make_user(role="operator", extension="102")
    await start_wrapup(sessions, None, seconds=1.5)  # under the previous leader
    # a wrap-up long over is no timer's business
    async with unit_of_work(sessions) as s:
        old = utcnow() - timedelta(minutes=5)
        on = await users_by_extension(s, ["102"])
        assert await presence.start_wrapup(s, ["102"], old, 30, old, on=on) == [other.id]
    assert await pusher.resume() == 1
    assert await pbx.wait_pauses(1) == [("false", None)]
    await pusher.idle()
    assert pusher.stats == {"pushed": 0, "wrapups_over": 1, "failed": 0}
