"""AMI events -> call tracker -> the CRM database -> people: lanes, batches, retries, back-pressure.

The listener awaits `on_event` for every AMI message in order. Feeding the tracker is pure and
cheap, so it happens right there; the facts it yields (each with its call's snapshot) queue up
for the writer lanes. Each lane applies what is pending in one transaction (a burst costs one
commit, not one per fact) through crm_core.calls.progress, whose messages are published after
that commit:

- the pop lane: who is calling (call started: the card by the number, a read) and the
  screen-pop (agent ringing: made from what the start read, or a read when the ring comes
  later) — a few small statements, so a pop never queues behind
  the writes of other calls, nor behind a new caller's card; each of its statements stands
  alone (autocommit: no BEGIN, no COMMIT to wait for);
- the card lane: a new caller's card and deal (or an open deal for a card without one), opened
  after the call's pop work and after its first screen-pop has gone out (or CARD_GRACE after
  its start, when no agent is rung by then: a queue); once committed, `call.card_opened` goes
  through the pop lane to the agents whose pop said the card was on its way (so it always
  follows their pop), or `call.card_failed` if it could not be opened;
- the live lane: agents' phones, answered, transferred, queued, and the calls in progress saved
  for dashboards and restarts (`restore`); and whether agent_states follow the PBX (pbx_sync:
  not from the AMI link's loss until the commit of its reconnect's reconcile);
- the log lane: call ended (the communication, the callback task), which waits until every
  earlier fact of the same call is in the database (its card too: the call is logged on it).

What the CRM makes of each fact lives in crm_core.calls; this module only decides when.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls import active, pbx_sync, progress
from crm_core.calls.active import CallSave
from crm_core.calls.schemas import NO_CONTEXT, CallerAtStart, CallInfo
from crm_core.calls.service import record_extensions
from crm_core.communications.repository import by_external_ids
from crm_core.db import Publisher, make_session_factory, unit_of_work
from crm_core.events.messages import (
    CallCardOpenedMessage,
    CallRingingMessage,
    CallStartedMessage,
)
from crm_core.events.types import CallEvent
from crm_core.phones import try_normalize_phone
from crm_core.users.service import users_by_extension
from telephony import presence_events
from telephony.call_in_progress import call_info, started_call_info
from telephony.facts import (
    AgentRingEnded,
    AgentRinging,
    CallAnswered,
    CallEnded,
    CallQueueChanged,
    CallStarted,
    CallSummary,
    CallTransferred,
    Fact,
)
from telephony.finished_call import to_record, ts
from telephony.tracker import CallTracker

logger = logging.getLogger(__name__)

# How long a new caller's card waits for the call's first screen-pop to go out. The agent's phone
# rings a few ms after the call starts; opening the card then would make that pop wait for the
# card's writes on the one event loop (~9 ms of CPU). A call rung later (a queue) gets its card
# after this.
CARD_GRACE = 0.05
# A pbx_sync mark that failed (the database away) is written again after this, doubling up to
# SYNC_RETRY_MAX, until it lands or a newer one is queued: the routers trust agent_states only
# while it says "in sync".
SYNC_RETRY_SECONDS = 1.0
SYNC_RETRY_MAX = 30.0


@dataclass(frozen=True, slots=True)
class _CallOver:
    """The live lane's share of a call's end: its agents are free.

    Kept apart from logging the call so that the two lanes never write the same rows (rows two
    concurrent transactions lock in different orders deadlock)."""

    linkedid: str
    at: float
    agents: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _OpenCard:
    """The card lane's work: the card (and deal) a caller lacks, as the call's start showed it."""

    linkedid: str
    call: CallInfo
    at: datetime
    handed: float  # time.monotonic() when the pop lane handed it on (CARD_GRACE counts from it)


@dataclass(frozen=True, slots=True)
class _CardOpened:
    """Back in the pop lane once the card is committed: who gets `call.card_opened` is known
    only there (the agents whose pop went out before the card existed)."""

    linkedid: str
    message: CallCardOpenedMessage


@dataclass(frozen=True, slots=True)
class _CardFailed:
    """Back in the pop lane when the card lane gave up on a call's card: the agents whose pop
    said it was on its way stop waiting (`call.card_failed`)."""

    linkedid: str


@dataclass(frozen=True, slots=True)
class _PbxSync:
    """Where the facts stop or start telling the PBX's calls as they are (the live lane's, for
    crm_core/calls/pbx_sync.py): `synced` False when the AMI link is lost (calls may end unseen
    until it is back), True after a reconnect's reconcile, whose facts come just before it;
    `live`, the calls Asterisk had then. Not a call's work: its `linkedid` is empty (the lanes
    count work by call)."""

    synced: bool
    at: float
    live: frozenset[str] = frozenset()
    linkedid: str = ""


Work = Fact | _PbxSync | _CallOver | _OpenCard | _CardOpened | _CardFailed
# what a lane does with a batch in its transaction; it may hand back what to do once committed
Apply = Callable[[AsyncSession, list[Any]], Awaitable[Callable[[], None] | None]]


def _agents(summary: CallSummary) -> tuple[str, ...]:
    return tuple(
        sorted(
            {e for e in (*summary.agents_rung, summary.final_agent, summary.agent_extension) if e}
        )
    )


class _Lane:
    """A queue of work and the one task that writes it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pending: list[Any] = []
        self.idle = asyncio.Event()
        self.idle.set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def push(self, item: Work) -> None:
        self.pending.append(item)
        self.idle.clear()
        self._wake.set()

    async def wait(self) -> None:
        """Until there is work (a wake-up left by work already taken is no news)."""
        while not self.pending:
            self._wake.clear()
            await self._wake.wait()

    def start(self, body: Coroutine[Any, Any, None]) -> None:
        self._task = asyncio.create_task(body, name=f"call-pipeline-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class CallPipeline:
    def __init__(
        self,
        tracker: CallTracker,
        sessions: async_sessionmaker[AsyncSession],
        publish: Publisher | None,
        *,
        region: str,
        company_numbers: Sequence[str] = (),
        callback_due: timedelta = timedelta(minutes=30),
        locale: str = "en",
        wrapup_seconds: float = 0.0,
        max_pending: int = 20_000,
        batch_size: int = 200,
        pop_batch_size: int = 16,
        start_read_seconds: float = 1.0,
        start_hold_seconds: float = 0.02,
        pop_publish: Publisher | None = None,
    ) -> None:
        self.tracker = tracker
        self._sessions = sessions
        # the pop lane's statements each stand alone (reads, and the upsert remembering who a
        # call is with), so they run without BEGIN and COMMIT: two round trips fewer per pop
        self._pop_sessions = make_session_factory(
            sessions.kw["bind"].execution_options(isolation_level="AUTOCOMMIT")
        )
        self._publish = publish
        # the pop lane's messages (the hub's `publish_shown_first`: this instance's sockets get
        # a screen-pop before event_log has numbered it); `publish` when not given
        self._pop_publish = pop_publish or publish
        self._region = region
        self._company = frozenset(
            n for n in (try_normalize_phone(x, region) for x in company_numbers) if n
        )
        self._callback_due = callback_due
        self._locale = locale  # DEFAULT_LOCALE: the words of deals and tasks a call opens
        self._wrapup = wrapup_seconds  # WRAPUP_SECONDS: each answered call's agents, after it
        self._max_pending = max_pending
        self._batch = batch_size
        # a pop leaves with its batch's commit: short batches, so it waits for few other calls
        self._pop_batch = pop_batch_size
        self._pop = _Lane("pop")
        self._card = _Lane("card")
        self._live = _Lane("live")
        self._log = _Lane("log")
        self._lanes = (self._pop, self._card, self._live, self._log)
        # work not yet committed, per call and lane: a call's card waits for its pop work, its
        # live facts for both (its people see ringing before answered, and who the call is
        # with), its end for all three
        self._pending: dict[str, dict[str, int]] = {"pop": {}, "card": {}, "live": {}}
        # calls whose card is being opened (from their start until `call.card_opened` is sent),
        # and the agents whose pop went out without it meanwhile: the pop lane's own state
        self._opening: set[str] = set()
        self._uncarded: dict[str, dict[str, None]] = {}
        # calls whose card could not be opened: a later pop of theirs says so too
        self._card_failed: set[str] = set()
        # what each call's start read (its card as a pop shows it), by when it was read: the
        # pops of the next `start_read_seconds` are made from it, with no read of their own
        # (the agent's phone rings a few ms after the start: a round trip fewer on most pops)
        self._starts: dict[str, tuple[float, CallerAtStart]] = {}
        self._start_fresh = start_read_seconds
        # new callers' calls whose first screen-pop has not gone out yet: their card waits
        self._first_pop: dict[str, asyncio.Event] = {}
        self._progress = asyncio.Condition()
        # the pop lane's committed messages held while more pop work is pending (`_hold_pops`)
        self._held: list[tuple[list[Any], list[str]]] = []
        self._held_since = 0.0  # time.monotonic() of the oldest held batch
        # a call's `call.started` waits this long for its ring, to leave with its pop
        self._start_hold = start_hold_seconds
        self._room = asyncio.Event()
        self._room.set()
        self.stats = {"events": 0, "facts": 0, "batches": 0, "calls_logged": 0, "errors": 0}
        # calls that may have a queue stay (joined a queue here, or restored): only theirs are
        # read when answered and ended. The log lane forgets each call (here and above) once its
        # end is applied, or lost
        self._queued: set[str] = set()
        # who writes pbx_sync once `restore` claimed it (until another follower does)
        self._follower = uuid.uuid4()
        # the newest mark queued, and the timer writing it again if it failed (`_sync_lost`);
        # its calls whose end has not come since (a mark written again keeps only these): a
        # copy of its `live` that ends shrink, so it never outgrows what Asterisk had then
        self._last_sync: _PbxSync | None = None
        self._still_up: set[str] = set()
        self._sync_retry: asyncio.TimerHandle | None = None
        self._sync_delay = SYNC_RETRY_SECONDS

    # ------------------------------------------------------------------ inputs (the listener's)

    async def on_event(self, event: dict[str, str], arrival: float) -> None:
        self.stats["events"] += 1
        facts = self.tracker.feed(event, arrival)
        if facts:
            await self._enqueue(facts)

    async def on_connected(self, channels: list[dict[str, str]]) -> None:
        """After a (re)connect: what Asterisk has now settles calls that changed while away."""
        now = time.time()
        facts: list[Fact] = []
        for channel in channels:
            facts += self.tracker.feed(channel, now)
        live = {c["Linkedid"] for c in channels if c.get("Linkedid")}
        facts += self.tracker.reconcile(live, now)
        # after the reconcile's facts: the live lane says agent_states follow the PBX in the
        # commit that frees the agents of the calls that ended unseen (or a later one)
        await self._enqueue([*facts, _PbxSync(synced=True, at=now, live=frozenset(live))])

    async def on_lost(self) -> None:
        """The AMI link is lost (after its last event): calls may end unseen until the next
        `on_connected`, so agent_states are not to be trusted meanwhile (the routers wait)."""
        await self._enqueue([_PbxSync(synced=False, at=time.time())])

    async def _enqueue(self, facts: Sequence[Fact | _PbxSync]) -> None:
        popped = False
        for fact in facts:
            lid = fact.linkedid
            if isinstance(fact, _PbxSync):
                self._newest_mark(fact)
                self._sync_delay = SYNC_RETRY_SECONDS
            if isinstance(fact, CallEnded):
                self._still_up.discard(lid)
                self._count("live", lid, 1)
                self._live.push(_CallOver(lid, fact.at, _agents(fact.summary)))
                self._log.push(fact)
                continue
            if isinstance(fact, CallStarted | AgentRinging):
                self._count("pop", lid, 1)
                self._pop.push(fact)
                popped = True
            self._count("live", lid, 1)
            self._live.push(fact)
        if sum(len(lane.pending) for lane in self._lanes) >= self._max_pending:
            # back-pressure: the listener stops reading until the database catches up
            self._room.clear()
            await self._room.wait()
        elif popped:
            # the pop lane sends its read now, not after the listener has worked through every
            # event that came in the same read from the socket
            await asyncio.sleep(0)

    def _count(self, lane: str, linkedid: str, n: int) -> None:
        counts = self._pending[lane]
        left = counts.get(linkedid, 0) + n
        if left > 0:
            counts[linkedid] = left
        else:
            counts.pop(linkedid, None)

    def _clear(self, lanes: tuple[str, ...], ids: set[str]) -> bool:
        return all(self._pending[lane].keys().isdisjoint(ids) for lane in lanes)

    # ----------------------------------------------------------------------------- lifecycle

    async def restore(self) -> int:
        """Calls in progress saved before a restart go back into the tracker; agent_states are
        not in sync with the PBX until this follower's first reconcile commits (whoever wrote
        them last may have died with calls up)."""
        async with unit_of_work(self._sessions) as session:
            await pbx_sync.claim(session, self._follower, ts(time.time()))
            await active.forget_unresumable(session)
            rows = await active.active_calls(session)
        for row in rows:
            self._queued.add(row.linkedid)  # it may have waited in a queue before the restart
            try:
                self.tracker.restore(row.tracker_state)
            except (KeyError, ValueError, TypeError) as exc:
                logger.warning("cannot restore call %s: %r", row.linkedid, exc)
        if rows:
            logger.info("restored %d calls in progress", len(rows))
        return len(rows)

    def start(self) -> None:
        self._pop.start(self._run(self._pop, self._apply_pop))
        # new callers' cards yield to the pops: a card may wait, a pop should not
        self._card.start(self._run(self._card, self._apply_card, after=("pop",), behind=self._pop))
        self._live.start(self._run(self._live, self._apply_live, after=("pop", "card")))
        self._log.start(self._run(self._log, self._apply_log, after=("pop", "card", "live")))

    async def close(self) -> None:
        await self.drain()
        if self._sync_retry is not None:
            self._sync_retry.cancel()
        for lane in self._lanes:
            await lane.stop()

    async def drain(self) -> None:
        """Wait until every fact fed so far is in the database (tests, shutdown)."""
        while not all(lane.idle.is_set() for lane in self._lanes):
            for lane in self._lanes:
                await lane.idle.wait()

    # ----------------------------------------------------------------------------- the writers

    def _take(self, lane: _Lane) -> list[Any]:
        # bounded batches: one commit per burst, but a session never grows huge
        size = self._pop_batch if lane in (self._pop, self._card) else self._batch
        batch, lane.pending = lane.pending[:size], lane.pending[size:]
        if sum(len(lane.pending) for lane in self._lanes) < self._max_pending:
            self._room.set()
        return batch

    async def _run(
        self,
        lane: _Lane,
        apply: Apply,
        *,
        after: tuple[str, ...] = (),
        behind: _Lane | None = None,
    ) -> None:
        """Apply what is pending, batch by batch; first wait until the lanes `after` have
        committed what they hold of the same calls (never the other way round: no cycles).
        With `behind`, a batch starts only when that lane has nothing pending: its work
        goes first when the service is short of CPU (it never waits for this one)."""
        while True:
            await lane.wait()
            while lane.pending or (lane is self._pop and self._held):
                if not lane.pending:  # only a call's start is held: its ring may come first
                    await self._ring_or_publish()
                    continue
                if lane is self._card:
                    await self._first_pop_out(lane.pending[0])
                if behind is not None:
                    await behind.idle.wait()
                batch = self._take(lane)
                if after:
                    ids = {item.linkedid for item in batch}
                    async with self._progress:
                        await self._progress.wait_for(lambda ids=ids: self._clear(after, ids))  # type: ignore[misc]
                lost = {"card": self._card_lost, "live": self._sync_lost}.get(lane.name)
                try:
                    await self._apply_batch(apply, batch, lane is self._pop, lost)
                finally:
                    if lane is self._log:  # the calls are over, logged or lost: forget them
                        for item in batch:
                            self._forget(item.linkedid)
                    if lane.name in self._pending:
                        async with self._progress:
                            for item in batch:
                                self._count(lane.name, item.linkedid, -1)
                            self._progress.notify_all()
            lane.idle.set()

    async def _first_pop_out(self, item: _OpenCard) -> None:
        """Until the call's first screen-pop is published (or CARD_GRACE after its start)."""
        popped = self._first_pop.get(item.linkedid)
        left = item.handed + CARD_GRACE - time.monotonic()
        if popped is not None and left > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await popped.wait()

    def _popped(self, events: list[Any]) -> None:
        """These messages are out: a card waiting for its call's first pop may be opened."""
        for event in events:
            if isinstance(event, CallEvent) and event.type == CallRingingMessage.TYPE:
                self._card_may_open(event.linkedid)

    def _card_may_open(self, linkedid: str) -> None:
        waiting = self._first_pop.pop(linkedid, None)
        if waiting is not None:
            waiting.set()

    async def _apply_batch(
        self,
        apply: Apply,
        batch: list[Any],
        pop: bool = False,
        lost: Callable[[Any], None] | None = None,
    ) -> None:
        sessions = self._pop_sessions if pop else self._sessions
        if pop:  # with or without a publisher: `_publish_held` is where its pops are out
            await self._apply_batch_with(sessions, apply, batch, self._hold_pops, lost)
            await self._publish_held()
        else:
            await self._apply_batch_with(sessions, apply, batch, self._publish, lost)

    async def _apply_batch_with(
        self,
        sessions: async_sessionmaker[AsyncSession],
        apply: Apply,
        batch: list[Any],
        publish: Publisher | None,
        lost: Callable[[Any], None] | None = None,
    ) -> None:
        """`lost`: told of each item that failed alone too (after its batch had)."""
        self.stats["batches"] += 1
        try:
            async with unit_of_work(sessions, publish) as session:
                then = await apply(session, batch)
        except Exception:
            logger.exception("a batch of %d call facts failed; retrying one by one", len(batch))
        else:
            if then is not None:
                then()
            return
        for item in batch:  # isolate the bad fact; every other one still lands
            try:
                async with unit_of_work(sessions, publish) as session:
                    then = await apply(session, [item])
            except Exception:
                self.stats["errors"] += 1
                logger.exception("call fact %s of %s lost", type(item).__name__, item.linkedid)
                if lost is not None:
                    lost(item)
                continue
            if then is not None:
                then()

    async def _hold_pops(self, events: list[Any]) -> None:
        """The pop lane's publisher, after its batch's COMMIT: the messages wait for
        `_publish_held`, their calls counted as pending in the pop lane until then (the other
        lanes still publish a call's messages after its pop)."""
        # the lane collects call messages only; anything else would just not be waited for
        calls = [e.linkedid for e in events if isinstance(e, CallEvent)]
        for linkedid in calls:
            self._count("pop", linkedid, 1)
        if not self._held:
            self._held_since = time.monotonic()
        self._held.append((events, calls))

    def _starts_only(self) -> bool:
        """What the pop lane holds is calls' `call.started` alone, held for less than
        `start_hold_seconds`: it may wait for their rings (`_ring_or_publish`)."""
        if time.monotonic() - self._held_since >= self._start_hold:
            return False
        started = CallStartedMessage.TYPE
        return all(
            isinstance(e, CallEvent) and e.type == started for batch, _ in self._held for e in batch
        )

    async def _ring_or_publish(self) -> None:
        """The pop lane holds calls' starts only: until more pop work comes (their ring,
        typically: then both leave in one event_log append, and the ring's pop does not wait
        behind its call's start's) or `start_hold_seconds` have gone by, then publish."""
        left = self._held_since + self._start_hold - time.monotonic()
        if left > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._pop.wait()
        if not self._pop.pending:
            await self._publish_held(hold=False)

    async def _publish_held(self, *, hold: bool = True) -> None:
        """Publish what the pop lane committed, in order, unless more pop work is pending: then
        its next batch (a pop, typically right behind its call's start) goes first, and both
        batches' messages leave in one event_log transaction after it. At most two batches
        wait, so a busy lane still publishes every other commit; except calls' `call.started`
        alone, which wait for more pop work (their rings: `_ring_or_publish`) up to
        `start_hold_seconds` after the first of them was held."""
        if not self._held or (self._pop.pending and len(self._held) < 2):
            return
        if hold and not self._pop.pending and self._starts_only():
            return
        held, self._held = self._held, []
        events = [e for batch, _ in held for e in batch]
        try:
            if self._pop_publish is not None:
                await self._pop_publish(events)
        except Exception:  # as unit_of_work: a failed publish never undoes the commit
            logger.exception("publishing %d domain events failed", len(events))
        finally:
            self._popped(events)
            async with self._progress:
                for _, calls in held:
                    for linkedid in calls:
                        self._count("pop", linkedid, -1)
                self._progress.notify_all()

    def _push(self, lane: _Lane, item: _OpenCard | _CardOpened | _CardFailed) -> None:
        """Work one lane hands another for the same call: counted before the lane handing it
        counts its own work done, so the lanes after both never see a gap."""
        self._count(lane.name, item.linkedid, 1)
        lane.push(item)

    def _sync_lost(self, item: Any) -> None:
        """A live item failed alone: a pbx_sync mark is written again later, if it is still
        the newest (a lost mark would mislead the routers for the whole episode)."""
        if not isinstance(item, _PbxSync) or item is not self._last_sync:
            return
        if self._sync_retry is not None:
            self._sync_retry.cancel()
        delay, self._sync_delay = self._sync_delay, min(self._sync_delay * 2, SYNC_RETRY_MAX)
        logger.warning("pbx_sync mark (synced=%s) lost: again in %.1f s", item.synced, delay)
        self._sync_retry = asyncio.get_running_loop().call_later(delay, self._sync_again, item)

    def _newest_mark(self, mark: _PbxSync) -> None:
        """An older mark failing now is not written again; calls end after this one."""
        self._last_sync = mark
        self._still_up = set(mark.live)

    def _sync_again(self, item: _PbxSync) -> None:
        """The mark anew. An "in sync" one is as of now: it keeps the agents of the calls
        Asterisk had at its reconcile and has not ended since, and of those begun since (the
        tracker's; their facts are queued before it). "Not in sync" keeps its time: the
        episode's start (routers stop waiting for an episode 10 minutes old)."""
        self._sync_retry = None
        if item is not self._last_sync:
            return
        if item.synced:
            live = self._still_up | {c.linkedid for c in self.tracker.active_calls()}
            again = _PbxSync(synced=True, at=time.time(), live=frozenset(live))
        else:
            again = _PbxSync(synced=False, at=item.at)
        self._newest_mark(again)
        self._count("live", again.linkedid, 1)
        self._live.push(again)

    def _card_lost(self, item: _OpenCard) -> None:
        """The card lane gave up on this call's card: the pop lane tells the agents waiting."""
        self._push(self._pop, _CardFailed(item.linkedid))

    async def _apply_pop(
        self, session: AsyncSession, facts: list[Fact | _CardOpened | _CardFailed]
    ) -> Callable[[], None]:
        """Who is calling and the screen-pop, from reads: small statements, no batch to wait."""
        carded: list[str] = []
        failed: set[str] = set()  # calls whose card is given up in this batch
        for fact in facts:
            if isinstance(fact, _CardOpened):
                # after every pop of the call that went out without the card
                exts = list(self._uncarded.get(fact.linkedid, {}))
                progress.card_opened_pop(session, fact.message, exts)
                carded.append(fact.linkedid)
                # a later pop of the call (in this batch too) reads the card: after this
                # message nobody would bring it to an agent whose pop went out without it
                self._starts.pop(fact.linkedid, None)
                continue
            if isinstance(fact, _CardFailed):
                exts = list(self._uncarded.get(fact.linkedid, {}))
                progress.card_failed_pop(session, fact.linkedid, exts)
                carded.append(fact.linkedid)  # nobody waits for this card any more
                failed.add(fact.linkedid)
                continue
            self.stats["facts"] += 1
            if isinstance(fact, CallStarted):
                start = await progress.who_is_calling(
                    session,
                    started_call_info(fact),
                    at=ts(fact.at),
                    region=self._region,
                    company_numbers=self._company,
                )
                self._forget_old_starts()
                self._starts.pop(fact.linkedid, None)  # (a retry: kept in order of reading)
                self._starts[fact.linkedid] = (time.monotonic(), start)
                if start.to_open and fact.linkedid not in self._opening:  # once, even on a retry
                    self._opening.add(fact.linkedid)
                    self._first_pop[fact.linkedid] = asyncio.Event()
                    opening = _OpenCard(
                        fact.linkedid, started_call_info(fact), ts(fact.at), time.monotonic()
                    )
                    self._push(self._card, opening)
            elif isinstance(fact, AgentRinging):
                pop = await progress.agent_ringing_pop(
                    session,
                    call_info(fact.call),
                    fact.linkedid,
                    fact.extension,
                    at_start=self._start_read(fact.linkedid),
                )
                if fact.linkedid in failed or fact.linkedid in self._card_failed:
                    # its card could not be opened: this agent is told at once, after its pop
                    if pop.new_caller:
                        progress.card_failed_pop(session, fact.linkedid, [fact.extension])
                elif fact.linkedid in self._opening and pop.call.deal_id is None:
                    # its card (or deal) is on its way: this agent gets it when committed
                    self._uncarded.setdefault(fact.linkedid, {})[fact.extension] = None

        def announced() -> None:  # (a batch retried fact by fact still finds them)
            for linkedid in carded:
                self._forget_card(linkedid)
            self._card_failed.update(failed)  # once committed: a rolled-back batch leaves none

        return announced

    def _start_read(self, linkedid: str) -> CallerAtStart | None:
        """What the call's start read, for its pop to be made from, while that is what the pop
        may show: read at most `start_read_seconds` ago, and the call's new card (if it gets
        one) not announced yet: until this lane sends `call.card_opened` (which drops the
        start's read), a pop goes out without the card either way, and that message brings
        it."""
        self._forget_old_starts()
        read = self._starts.get(linkedid)
        return read[1] if read is not None else None

    def _forget_old_starts(self) -> None:
        """Oldest first: what is too old for any pop goes (also calls never rung)."""
        now = time.monotonic()
        while self._starts:
            oldest = next(iter(self._starts))
            if now - self._starts[oldest][0] <= self._start_fresh:
                break
            del self._starts[oldest]

    def _forget_card(self, linkedid: str) -> None:
        """Its card is announced (or that it could not be opened), or the call is over: no
        agent is left waiting for it."""
        self._opening.discard(linkedid)
        self._uncarded.pop(linkedid, None)
        self._card_may_open(linkedid)

    def _forget(self, linkedid: str) -> None:
        """The call's end is applied (or lost): nothing of it stays in memory."""
        self._forget_card(linkedid)
        self._card_failed.discard(linkedid)
        self._queued.discard(linkedid)
        self._starts.pop(linkedid, None)

    async def _apply_card(
        self, session: AsyncSession, batch: list[_OpenCard]
    ) -> Callable[[], None]:
        """New callers' cards and deals, after their pops; each announced once committed."""
        opened: list[_CardOpened | _CardFailed] = []
        for item in batch:
            await progress.open_card(
                session,
                item.call,
                at=item.at,
                region=self._region,
                company_numbers=self._company,
                locale=self._locale,
            )
            message = await progress.card_opened(session, item.linkedid)
            # no card to show after all: its agents are told, not left waiting
            opened.append(
                _CardOpened(item.linkedid, message)
                if message is not None
                else _CardFailed(item.linkedid)
            )

        def announce() -> None:
            for item in opened:
                self._push(self._pop, item)

        return announce

    async def _apply_live(
        self, session: AsyncSession, batch: list[Fact | _PbxSync | _CallOver]
    ) -> None:
        calls = {fact.linkedid for fact in batch if not isinstance(fact, _PbxSync)}
        known = await active.contexts(session, calls)
        phones = active.AgentPhones()
        saves: dict[str, tuple[CallInfo, datetime]] = {}
        sync: _PbxSync | None = None  # the batch's last word on it
        for fact in batch:
            if isinstance(fact, _PbxSync):
                sync = fact
                continue
            self.stats["facts"] += 1
            at = ts(fact.at)
            if isinstance(fact, _CallOver):
                progress.call_over(phones, fact.linkedid, fact.agents, at)
                progress.call_hung_up(session, fact.linkedid, at)
                saves.pop(fact.linkedid, None)
                continue
            call = call_info(fact.call)
            ctx = known.get(fact.linkedid, NO_CONTEXT)
            if isinstance(fact, CallQueueChanged):
                self._queued.add(fact.linkedid)
            # queue stays for the queue statistics (issue 16), in the fact's transaction
            await presence_events.on_live_fact(session, fact, queued=fact.linkedid in self._queued)
            if isinstance(fact, AgentRinging):
                progress.agent_ringing(phones, fact.linkedid, fact.extension, at)
            elif isinstance(fact, AgentRingEnded):
                await progress.agent_ring_ended(
                    session,
                    phones,
                    call,
                    ctx,
                    linkedid=fact.linkedid,
                    extension=fact.extension,
                    result=fact.result,
                    at=at,
                )
            elif isinstance(fact, CallAnswered):
                await progress.call_answered(
                    session,
                    phones,
                    call,
                    ctx,
                    linkedid=fact.linkedid,
                    extension=fact.extension,
                    at=at,
                )
            elif isinstance(fact, CallQueueChanged):
                await progress.call_queue_changed(
                    session, call, ctx, linkedid=fact.linkedid, queue=fact.queue
                )
            elif isinstance(fact, CallTransferred):
                await progress.call_transferred(
                    session,
                    phones,
                    call,
                    ctx,
                    linkedid=fact.linkedid,
                    from_extension=fact.from_extension,
                    to_extension=fact.to_extension,
                    kind=fact.kind,
                    at=at,
                )
            # CallStarted: nothing but the save (who is calling is the pop lane's)
            if call is not None:
                saves[fact.linkedid] = (call, at)
        # agents' phones and calls in progress are written once per batch, not once per fact
        await phones.write(session)
        await active.save_calls(session, self._saves(saves))
        if sync is not None:  # in the commit of the agents' states before it
            marked = await pbx_sync.mark(
                session, self._follower, synced=sync.synced, at=ts(sync.at)
            )
            # busy on a call Asterisk no longer had, and the tracker never knew; only while
            # this follower is the one: another's agents are not ours to free
            if marked and sync.synced:
                await active.free_agents_off(session, sync.live | calls, ts(sync.at))

    def _saves(self, latest: dict[str, tuple[CallInfo, datetime]]) -> list[CallSave]:
        """Each call as its last fact in the batch showed it, with the tracker's resumable state
        as of now: for a restart the newest state is the right one (events that made no fact,
        such as the last one seen, count too)."""
        out: list[CallSave] = []
        for linkedid in sorted(latest):
            try:
                state = self.tracker.snapshot(linkedid)
            except KeyError:
                continue  # the call ended since: its end is on its way
            call, at = latest[linkedid]
            out.append(CallSave(call, state, at))
        return out

    async def _apply_log(self, session: AsyncSession, facts: list[CallEnded]) -> None:
        # one statement each for the whole batch, not one per call: the calls' rows go (who
        # each was with comes back), their cards and deals and the agents who talked are read
        ended = await active.end_calls(session, [fact.linkedid for fact in facts])
        # the cards and deals read in one go; held here, as the session keeps them weakly, so
        # logging each call finds them without a read of its own
        held_in_session = await active.load_matched(session, ended.values())
        records = [to_record(fact.summary, None) for fact in facts]
        exts = {e for fact in facts for e in presence_events.talked(fact.summary)}
        exts.update(e for record in records for e in record_extensions(record))
        users = await users_by_extension(session, sorted(exts))
        # the calls logged before (a call ended twice): kept up to date as the batch logs them
        done = await by_external_ids(session, "call", [fact.linkedid for fact in facts])
        for fact, record in zip(facts, records, strict=True):
            self.stats["facts"] += 1
            # the queue stay's end, and wrap-up for the agents who talked (issue 16)
            await presence_events.on_call_ended(
                session, fact, self._wrapup, queued=fact.linkedid in self._queued, users=users
            )
            logged = await progress.call_ended(
                session,
                record,
                agents=_agents(fact.summary),
                region=self._region,
                company_numbers=self._company,
                callback_due=self._callback_due,
                locale=self._locale,
                # a second end of the same call in the batch finds its row gone, as one by one
                ended=ended.pop(fact.linkedid, NO_CONTEXT),
                users=users,
                logged=done,
            )
            if logged is not None:
                done.setdefault(fact.linkedid, logged.communication)
                if logged.created:
                    self.stats["calls_logged"] += 1
        del held_in_session
