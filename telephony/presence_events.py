"""Presence and the PBX, both ways, and the call facts presence and queue statistics need.

- From Asterisk: `QueueMemberPause` sets the member's agent paused or available; a
  `QueueMemberStatus` whose pause flag differs from the last one seen for that member does the
  same (a pause made while we were away, or by a phone feature code). Other events pass by.
- To Asterisk: a presence change made in the CRM pauses or unpauses the extension's queue
  memberships (`QueuePause` per member interface found by `QueueStatus`), so queues never ring
  an agent the router would not (paused, DND and wrap-up all map to the PBX's pause flag; the
  wrap-up's timing is telephony/presence_pusher.py's).
- From the call tracker (CallPipeline's live and log lanes: `on_live_fact`, `on_call_ended`):
  queue stays for statistics (crm_core.reports.queue_log) and the wrap-up after each answered
  call.

Loops end by themselves: the PBX's echo of our own QueuePause finds the presence agreeing (a
pause under our wrap-up reason is always ours: crm_core.presence.rules.from_pbx).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.db import Publisher, unit_of_work
from crm_core.models_common import utcnow
from crm_core.presence import rules
from crm_core.presence import service as presence
from crm_core.reports import queue_log
from crm_core.users.models import User
from telephony.facts import CallAnswered, CallEnded, CallQueueChanged, CallSummary, Fact
from telephony.finished_call import ts
from telephony.originate import ActionSender

logger = logging.getLogger(__name__)

AmiEvent = dict[str, str]
OnEvent = Callable[[AmiEvent, float], Awaitable[None]]
_INTERFACE = re.compile(r"^[^/]+/([^@/\-;]+)")


def member_extension(event: AmiEvent) -> str | None:
    """The agent's extension of a queue member: Local/101@agent-phones/n, PJSIP/101 -> 101."""
    for key in ("StateInterface", "Interface", "Location", "MemberName"):
        m = _INTERFACE.match(event.get(key, ""))
        if m:
            return m.group(1)
    return None


def member_interface(event: AmiEvent) -> str:
    return event.get("Interface") or event.get("Location") or ""


def pause_flag(event: AmiEvent) -> bool | None:
    value = event.get("Paused", "").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    return None


# the events PauseWatch reads (the listener hands only these to PresenceFromPbx.on_event)
PBX_PAUSE_EVENTS = ("QueueMemberPause", "QueueMemberStatus", "QueueMemberAdded")


class PauseWatch:
    """Which QueueMember events are news: pure, with a memory of each member's pause flag.

    -> (extension, paused, reason) to apply, or None.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], bool] = {}

    def feed(self, event: AmiEvent) -> tuple[str, bool, str | None] | None:
        name = event.get("Event", "")
        if name not in PBX_PAUSE_EVENTS:
            return None
        ext, paused = member_extension(event), pause_flag(event)
        if ext is None or paused is None:
            return None
        key = (event.get("Queue", ""), member_interface(event))
        before = self._seen.get(key)
        self._seen[key] = paused
        if name == "QueueMemberPause":
            return ext, paused, event.get("PausedReason") or event.get("Reason") or None
        if before is not None and before != paused:  # a pause flip we were not told of
            return ext, paused, event.get("PausedReason") or None
        return None


class PresenceFromPbx:
    """Applies the PBX's pauses to presence, each in its own transaction (they are rare)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publish: Publisher | None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._publish = publish
        self._clock = clock
        self.watch = PauseWatch()

    async def on_event(self, event: AmiEvent, arrival: float = 0.0) -> None:
        news = self.watch.feed(event)
        if news is None:
            return
        ext, paused, reason = news
        try:
            async with unit_of_work(self._sessions, self._publish) as session:
                changed = await presence.from_pbx(session, ext, paused, reason, self._clock())
        except Exception:
            logger.exception("presence: PBX pause of %s not applied", ext)
            return
        if changed:
            logger.info(
                "presence from the PBX",
                extra={"extension": ext, "paused": paused, "users": changed},
            )


async def send_pause(ami: ActionSender, extension: str, flag: rules.PbxPause) -> list[str]:
    """`flag` to every queue membership of `extension` -> the member interfaces sent."""
    paused = flag.paused
    replies = await ami.send_action({"Action": "QueueStatus"})
    interfaces = sorted(
        {
            member_interface(r)
            for r in replies
            if r.get("Event") == "QueueMember" and member_extension(r) == extension
        }
        - {""}
    )
    for interface in interfaces:
        action = {"Action": "QueuePause", "Interface": interface, "Paused": str(paused).lower()}
        if paused and flag.reason:
            action["Reason"] = flag.reason
        reply = await ami.send_action(action)
        if reply and reply[0].get("Response", "").lower() == "error":
            logger.warning(
                "presence: QueuePause refused",
                extra={"interface": interface, "message": reply[0].get("Message")},
            )
    return interfaces


def talked(summary: CallSummary) -> set[str]:
    """The agents who talked on an answered call (their wrap-up follows it), else nobody."""
    if summary.status != "answered":
        return set()
    agents = {leg.extension for leg in summary.legs}
    if summary.direction == "outbound" and summary.agent_extension:
        agents.add(summary.agent_extension)
    return agents


async def on_live_fact(session: AsyncSession, fact: Fact, *, queued: bool) -> None:
    """The live lane's share, in the fact's transaction: queue stays for the statistics.
    `queued` False: the call never joined a queue, so it has no stay to answer (no read)."""
    if isinstance(fact, CallQueueChanged):
        await queue_log.queue_changed(session, fact.linkedid, fact.queue, ts(fact.at))
    elif isinstance(fact, CallAnswered) and queued:
        await queue_log.answered(session, fact.linkedid, fact.extension, ts(fact.at))


async def on_call_ended(
    session: AsyncSession,
    fact: CallEnded,
    wrapup_seconds: float,
    *,
    queued: bool,
    users: Mapping[str, User],
) -> None:
    """The log lane's share, in the fact's transaction: the queue stay's end (if `queued`) and
    the wrap-up of the agents who talked (`wrapup_seconds`, Settings.presence.wrapup_seconds;
    0: none). `users`: the users on the extensions of a batch's calls by extension, read
    once (`users_by_extension`)."""
    summary = fact.summary
    if queued:
        await queue_log.call_ended(session, fact.linkedid, ts(summary.t_end))
    agents = talked(summary)
    if agents:
        await presence.start_wrapup(
            session, agents, ts(summary.t_end), wrapup_seconds, utcnow(), on=users
        )
