"""AMI events -> call tracker -> the CRM database -> people, in batches.

The listener awaits `on_event` for every AMI message in order. Feeding the tracker is pure and
cheap, so it happens right there; the facts it yields queue up for two writer lanes that apply
them in one transaction per batch (a burst of events costs one commit, not one per event) and
publish the resulting call events after that commit:

- the live lane: call started, agent ringing, answered, transferred — what a screen-pop waits
  for, so it never queues behind the heavier logging of finished calls;
- the log lane: call ended (the communication, the callback task), which waits until every
  earlier fact of the same call is in the database.

Calls in progress are saved with every batch, so a restarted service picks them up (`restore`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.calls import service as calls
from crm_core.db import Publisher, collect_event, unit_of_work
from crm_core.events.messages import (
    CallAnsweredMessage,
    CallDequeuedMessage,
    CallEndedMessage,
    CallQueuedMessage,
    CallRingEndedMessage,
    CallRingingMessage,
    CallStartedMessage,
    CallTransferredMessage,
)
from crm_core.events.types import CallEvent
from crm_core.phones import try_normalize_phone
from telephony import presence_events
from telephony.call_record import call_view, client_number, to_record, ts
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
from telephony.tracker import CallTracker

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _CallOver:
    """The live lane's share of a call's end: its agents are free, it is no longer in progress.

    Kept apart from logging the call so that the two lanes never write the same rows (rows two
    concurrent transactions lock in different orders deadlock)."""

    linkedid: str
    at: float
    agents: tuple[str, ...]


Work = Fact | _CallOver


def _agents(summary: CallSummary) -> tuple[str, ...]:
    return tuple(
        sorted(
            {e for e in (*summary.agents_rung, summary.final_agent, summary.agent_extension) if e}
        )
    )


class _Lane:
    """A queue of facts and the one task that writes them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pending: list[Work] = []
        self.idle = asyncio.Event()
        self.idle.set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def push(self, fact: Work) -> None:
        self.pending.append(fact)
        self.idle.clear()
        self._wake.set()

    async def wait(self) -> None:
        await self._wake.wait()
        self._wake.clear()

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
        max_pending: int = 20_000,
        batch_size: int = 200,
    ) -> None:
        self.tracker = tracker
        self._sessions = sessions
        self._publish = publish
        self._region = region
        self._company = frozenset(
            n for n in (try_normalize_phone(x, region) for x in company_numbers) if n
        )
        self._callback_due = callback_due
        self._max_pending = max_pending
        self._batch = batch_size
        self._live = _Lane("live")
        self._log = _Lane("log")
        # live facts not yet committed, per call: a call's end waits for them
        self._outstanding: dict[str, int] = {}
        self._progress = asyncio.Condition()
        self._room = asyncio.Event()
        self._room.set()
        # linkedid -> {client_id, deal_id, client_name, client_number}: who the call is with
        self._ctx: dict[str, dict[str, Any]] = {}
        self.stats = {"events": 0, "facts": 0, "batches": 0, "calls_logged": 0, "errors": 0}

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
        if facts:
            await self._enqueue(facts)

    async def _enqueue(self, facts: list[Fact]) -> None:
        for fact in facts:
            live: Work = (
                _CallOver(fact.linkedid, fact.at, _agents(fact.summary))
                if isinstance(fact, CallEnded)
                else fact
            )
            self._outstanding[fact.linkedid] = self._outstanding.get(fact.linkedid, 0) + 1
            self._live.push(live)
            if isinstance(fact, CallEnded):
                self._log.push(fact)
        if len(self._live.pending) + len(self._log.pending) >= self._max_pending:
            # back-pressure: the listener stops reading until the database catches up
            self._room.clear()
            await self._room.wait()

    # ----------------------------------------------------------------------------- lifecycle

    async def restore(self) -> int:
        """Calls in progress saved before a restart go back into the tracker."""
        async with self._sessions() as session:
            rows = await calls.active_calls(session)
        for row in rows:
            try:
                self.tracker.restore(row.state)
                self._ctx[row.linkedid] = {
                    k: row.view.get(k)
                    for k in ("client_id", "deal_id", "client_name", "client_number")
                }
            except (KeyError, ValueError, TypeError) as exc:
                logger.warning("cannot restore call %s: %r", row.linkedid, exc)
        if rows:
            logger.info("restored %d calls in progress", len(rows))
        return len(rows)

    def start(self) -> None:
        self._live.start(self._run_live())
        self._log.start(self._run_log())

    async def close(self) -> None:
        await self.drain()
        await self._live.stop()
        await self._log.stop()

    async def drain(self) -> None:
        """Wait until every fact fed so far is in the database (tests, shutdown)."""
        while not (self._live.idle.is_set() and self._log.idle.is_set()):
            await self._live.idle.wait()
            await self._log.idle.wait()

    # ----------------------------------------------------------------------------- the writers

    def _take(self, lane: _Lane) -> list[Work]:
        # bounded batches: one commit per burst, but a session never grows huge
        batch, lane.pending = lane.pending[: self._batch], lane.pending[self._batch :]
        if len(self._live.pending) + len(self._log.pending) < self._max_pending:
            self._room.set()
        return batch

    async def _run_live(self) -> None:
        while True:
            await self._live.wait()
            while self._live.pending:
                batch = self._take(self._live)
                try:
                    await self._apply_batch(batch)
                finally:
                    async with self._progress:
                        for fact in batch:
                            left = self._outstanding.get(fact.linkedid, 1) - 1
                            if left > 0:
                                self._outstanding[fact.linkedid] = left
                            else:
                                self._outstanding.pop(fact.linkedid, None)
                        self._progress.notify_all()
            self._live.idle.set()

    async def _run_log(self) -> None:
        while True:
            await self._log.wait()
            while self._log.pending:
                batch = self._take(self._log)
                calls_ended = {f.linkedid for f in batch}
                async with self._progress:
                    await self._progress.wait_for(
                        lambda ids=calls_ended: self._outstanding.keys().isdisjoint(ids)  # type: ignore[misc]
                    )
                await self._apply_batch(batch)
            self._log.idle.set()

    async def _apply_batch(self, batch: list[Work]) -> None:
        self.stats["batches"] += 1
        try:
            async with unit_of_work(self._sessions, self._publish) as session:
                touched: dict[str, float] = {}
                for fact in batch:
                    await self._apply(session, fact)
                    touched[fact.linkedid] = fact.at
                # calls in progress are saved once per batch, not once per fact
                for linkedid, at in touched.items():
                    await self._save(session, linkedid, at)
            return
        except Exception:
            logger.exception("a batch of %d call facts failed; retrying one by one", len(batch))
        for fact in batch:  # isolate the bad fact; every other one still lands
            try:
                async with unit_of_work(self._sessions, self._publish) as session:
                    await self._apply(session, fact)
                    await self._save(session, fact.linkedid, fact.at)
            except Exception:
                self.stats["errors"] += 1
                logger.exception("call fact %s of %s lost", type(fact).__name__, fact.linkedid)

    async def _apply(self, session: AsyncSession, fact: Work) -> None:
        self.stats["facts"] += 1
        # queue stays for statistics and wrap-up after answered calls (issue 16)
        await presence_events.on_call_fact(session, fact)
        if isinstance(fact, CallStarted):
            await self._on_started(session, fact)
        elif isinstance(fact, AgentRinging):
            await calls.set_agent_state(
                session, fact.extension, "ringing", fact.linkedid, ts(fact.at)
            )
            await self._notify(
                session, CallRingingMessage.TYPE, fact.linkedid, (fact.extension,), pop=True
            )
        elif isinstance(fact, AgentRingEnded):
            # free again unless the same call rings them anew (the "free" is per call)
            await calls.set_agent_state(session, fact.extension, "free", fact.linkedid, ts(fact.at))
            await self._notify(
                session,
                CallRingEndedMessage.TYPE,
                fact.linkedid,
                (fact.extension,),
                result=fact.result,
            )
        elif isinstance(fact, CallAnswered):
            if fact.extension:
                await calls.set_agent_state(
                    session, fact.extension, "talking", fact.linkedid, ts(fact.at)
                )
            exts: tuple[str, ...] = (fact.extension,) if fact.extension else ()
            await self._notify(
                session, CallAnsweredMessage.TYPE, fact.linkedid, exts, answered_by=fact.extension
            )
        elif isinstance(fact, CallQueueChanged):
            # for the supervisors' board (no phone rings): who waits in which queue, since when
            kind = CallQueuedMessage.TYPE if fact.queue else CallDequeuedMessage.TYPE
            await self._notify(session, kind, fact.linkedid, (), queue=fact.queue)
        elif isinstance(fact, CallTransferred):
            exts = tuple(e for e in (fact.from_extension, fact.to_extension) if e)
            if fact.from_extension:
                await calls.set_agent_state(
                    session, fact.from_extension, "free", fact.linkedid, ts(fact.at)
                )
            await self._notify(
                session,
                CallTransferredMessage.TYPE,
                fact.linkedid,
                exts,
                from_extension=fact.from_extension,
                to_extension=fact.to_extension,
                kind=fact.kind,
            )
        elif isinstance(fact, _CallOver):
            for ext in fact.agents:
                await calls.set_agent_state(session, ext, "free", fact.linkedid, ts(fact.at))
            await calls.drop_active_call(session, fact.linkedid)
        elif isinstance(fact, CallEnded):
            await self._on_ended(session, fact)

    async def _on_started(self, session: AsyncSession, fact: CallStarted) -> None:
        number = fact.caller_number if fact.direction == "inbound" else fact.did_or_dialled
        ctx = await calls.identify_caller(
            session,
            number,
            fact.caller_name if fact.direction == "inbound" else None,
            region=self._region,
            company_numbers=self._company,
            lead_source="inbound call" if fact.direction == "inbound" else "outbound call",
        )
        info: dict[str, Any] = {"client_id": None, "deal_id": None, "client_name": None}
        if ctx is not None:
            info.update(
                client_id=ctx.client_id,
                deal_id=ctx.deal_id,
                client_created=ctx.client_created,
                client_name=ctx.client_name,
                client_number=ctx.e164,
            )
            named = fact.variables.get("CRM_DEAL_ID")
            if (
                named
                and named.isdigit()
                and await calls.deal_of_client(session, int(named), ctx.client_id)
            ):
                info["deal_id"] = int(named)  # click-to-call from a deal: log it there
        self._ctx[fact.linkedid] = info
        exts = (fact.agent_extension,) if fact.agent_extension else ()
        await self._notify(session, CallStartedMessage.TYPE, fact.linkedid, exts)

    async def _on_ended(self, session: AsyncSession, fact: CallEnded) -> None:
        summary = fact.summary
        ctx = self._ctx.pop(fact.linkedid, None) or {}
        record = to_record(summary, ctx.get("client_id"), ctx.get("deal_id"))
        logged = await calls.log_call(
            session,
            record,
            region=self._region,
            company_numbers=self._company,
            callback_due=self._callback_due,
        )
        if logged is not None and logged.created:
            self.stats["calls_logged"] += 1
        collect_event(
            session,
            CallEvent(
                type=CallEndedMessage.TYPE,
                linkedid=fact.linkedid,
                extensions=_agents(summary),
                payload={
                    "linkedid": fact.linkedid,
                    "status": summary.status,
                    "answered_by": summary.answered_by,
                    "missed": summary.missed,
                    "client_number": client_number(summary),
                    "client_id": logged.communication.client_id if logged else None,
                    "deal_id": logged.communication.deal_id if logged else None,
                    "communication_id": logged.communication.id if logged else None,
                    "talk_seconds": summary.talk_s,
                    "ring_seconds": summary.ring_s,
                },
            ),
        )

    async def _notify(
        self,
        session: AsyncSession,
        type_: str,
        linkedid: str,
        extensions: tuple[str, ...],
        *,
        pop: bool = False,
        **details: Any,
    ) -> None:
        ctx = self._ctx.get(linkedid) or {}
        payload: dict[str, Any] = {"call": self._view(linkedid), **details}
        if pop and ctx.get("client_id"):
            card = await calls.screen_pop(session, ctx["client_id"], ctx.get("deal_id"))
            payload["card"] = card
            payload["new_client"] = bool(ctx.get("client_created"))
            ctx["client_name"] = card.get("client", {}).get("name")
        collect_event(
            session,
            CallEvent(type=type_, linkedid=linkedid, extensions=extensions, payload=payload),
        )

    def _view(self, linkedid: str) -> dict[str, Any]:
        snap = self.tracker.call_snapshot(linkedid)
        if snap is not None:
            return call_view(snap, self._ctx.get(linkedid))
        return {"linkedid": linkedid, **(self._ctx.get(linkedid) or {})}

    async def _save(self, session: AsyncSession, linkedid: str, at: float) -> None:
        try:
            state = self.tracker.snapshot(linkedid)
        except KeyError:
            return  # the call ended within this batch
        await calls.save_active_call(session, linkedid, state, self._view(linkedid), ts(at))
