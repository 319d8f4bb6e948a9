"""Calls in progress and agents' phones as every instance sees them: active_calls, agent_states.

`active_calls` has three writers that never overwrite each other's columns: `save_calls` (the
call as the PBX shows it, and the tracker's resumable state), `remember_client` (who the call is
with) and `end_calls` (the row goes when the call is logged, handing back its client).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

import asyncpg
from sqlalchemy import BindParameter, Table, bindparam, delete, select, text
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.calls.models import ActiveCall, AgentState
from crm_core.calls.schemas import CallContext, CallInfo
from crm_core.clients.models import Client
from crm_core.db import NO_FLUSH_SQL, driver_connection
from crm_core.deals.models import Deal

_CONTEXT_COLUMNS = (
    ActiveCall.linkedid,
    ActiveCall.client_id,
    ActiveCall.deal_id,
    ActiveCall.client_name,
    ActiveCall.client_number,
    ActiveCall.client_created,
)


@dataclass(frozen=True, slots=True)
class CallSave:
    """One call's latest state in a batch: the PBX's view and the tracker's resumable state."""

    call: CallInfo
    tracker_state: dict[str, Any]
    at: datetime


# The call as the PBX shows it: CallInfo's fields that are columns of their own (linkedid and
# started_at are written apart: the key, and a start that never changes).
_CALL_COLUMNS = tuple(
    f.name
    for f in fields(CallInfo)
    if f.name in ActiveCall.__table__.c and f.name not in ("linkedid", "started_at")
)


def _call_columns(call: CallInfo) -> dict[str, Any]:
    """The call as the PBX shows it (CallInfo's fields of the same names)."""
    return {name: getattr(call, name) for name in _CALL_COLUMNS} | {"ringing": list(call.ringing)}


def _context(row: Any) -> CallContext:
    return CallContext(
        client_id=row.client_id,
        deal_id=row.deal_id,
        client_name=row.client_name,
        client_number=row.client_number,
        client_created=bool(row.client_created),
    )


def _save_statement() -> Insert:
    stmt = insert(cast(Table, ActiveCall.__table__))
    return stmt.on_conflict_do_update(
        index_elements=["linkedid"],
        set_={
            name: stmt.excluded[name] for name in ("tracker_state", "updated_at", *_CALL_COLUMNS)
        },
    )


async def save_calls(session: AsyncSession, saves: Sequence[CallSave]) -> None:
    """Calls in progress, once per batch each: what dashboards show and a restart resumes."""
    if not saves:
        return
    rows = [
        {
            "linkedid": s.call.linkedid,
            "tracker_state": s.tracker_state,
            "started_at": s.call.started_at,
            "updated_at": s.at,
            **_call_columns(s.call),
        }
        for s in saves
    ]
    await session.execute(_SAVE, rows)


_CLIENT_COLUMNS = ("client_id", "deal_id", "client_name", "client_number", "client_created")


_REMEMBERED = ("linkedid", "started_at", "updated_at", *_CLIENT_COLUMNS, *_CALL_COLUMNS)
_INTO = f"INSERT INTO active_calls (tracker_state, {', '.join(_REMEMBERED)})"
_KEEP_CALL = " ON CONFLICT (linkedid) DO UPDATE SET " + ", ".join(
    f"{name} = EXCLUDED.{name}" for name in _CLIENT_COLUMNS
)


# Who a call is with is remembered without waiting for the WAL flush when the statement is its
# own transaction (the pop lane's autocommit connection, at the call's start; a caller's
# transaction, the card lane's, commits as it would: `stands_alone`): the call's ring waits for
# that statement, and the flush, shared with every other lane's commits, was about a third of it
# (bench/pop_latency_notes.md, session 17). What a database crash could lose is the last
# fraction of a second of these rows (any later commit that waits for its flush, the live
# lane's many, flushes them too); a call that lost it is matched again by its number when
# logged, as a call nobody matched at its start.
_NO_FLUSH = f"(SELECT {NO_FLUSH_SQL}) AS no_flush"


def stands_alone(driver: asyncpg.Connection) -> bool:
    """The next statement is its own transaction (autocommit: the pop lane's)."""
    return not driver.is_in_transaction()


def _remember_sql(*, flush: bool) -> str:
    values = ", ".join(f"${n}" for n in range(1, len(_REMEMBERED) + 1))
    source = "" if flush else f" FROM {_NO_FLUSH}"
    return f"{_INTO} SELECT '{{}}', {values}{source}{_KEEP_CALL}"


def remember_found_sql(found_sql: str, also: str = "", *, flush: bool = True) -> str:
    """`remember_client`'s upsert (`flush`: as `_remember_sql`'s), who the call is with coming
    from `found_sql` in the same statement: a lookup of
    the number $4 (at most one row: id, name, deal_id, the card's open deal, and
    call_deal_id, the deal the call is with), which the statement returns. Its
    parameters: `remember_found_params`; the last is a click-to-call's named deal, `found_sql`
    refers to it by `REMEMBER_NAMED_DEAL`. `also`: more columns of that row to return
    (", expr AS name", `found` in them)."""
    calls = ", ".join(f"${n}" for n in range(5, 5 + len(_CALL_COLUMNS)))
    no_flush = "" if flush else f" CROSS JOIN {_NO_FLUSH}"
    return (
        f"WITH found AS ({found_sql}),"
        f" remembered AS ({_INTO}"
        f" SELECT '{{}}', $1, $2, $3, found.id, found.call_deal_id,"
        f" found.name, $4::text, false, {calls}"
        f" FROM (VALUES (1)) AS call LEFT JOIN found ON true{no_flush}{_KEEP_CALL})"
        f" SELECT id, name, deal_id, call_deal_id{also} FROM found"
    )


# the parameter remember_found_sql's lookup compares a click-to-call's named deal with
REMEMBER_NAMED_DEAL = f"${5 + len(_CALL_COLUMNS)}::int"


def remember_found_params(
    call: CallInfo, at: datetime, e164: str, named_deal: int | None
) -> list[Any]:
    return [call.linkedid, call.started_at, at, e164, *_call_columns(call).values(), named_deal]


# Sent to the driver (crm_core.db.driver_connection): every call's start runs it.
_REMEMBER = _remember_sql(flush=True)
_REMEMBER_ALONE = _remember_sql(flush=False)  # (the pop lane's)

# Built once, their rows given as parameters: SQLAlchemy builds, keys and (for rows given as
# values, one statement per row count) compiles a statement anew on every call, and its
# `excluded` alias is a copy of the table each time: most of the CPU of these upserts, made for
# nearly every fact of every call.
_SAVE = _save_statement()
_IDS: BindParameter[list[Any]] = bindparam("ids", expanding=True)
_CONTEXTS = select(*_CONTEXT_COLUMNS).where(ActiveCall.linkedid.in_(_IDS))
_CLIENTS = select(Client).where(Client.id.in_(_IDS))
_DEALS = select(Deal).where(Deal.id.in_(_IDS))
_END_CALLS = (
    delete(cast(Table, ActiveCall.__table__))
    .where(ActiveCall.linkedid.in_(_IDS))
    .returning(*_CONTEXT_COLUMNS)
)


async def remember_client(
    session: AsyncSession, call: CallInfo, ctx: CallContext, at: datetime
) -> None:
    """Who the call is with, for its pop, its messages and its log (the call's own columns are
    written only when the row is new: the live lane may already have saved a later state).
    A statement that is its own transaction does not wait for its flush (`_NO_FLUSH`)."""
    driver = await driver_connection(session)
    await driver.execute(
        _REMEMBER_ALONE if stands_alone(driver) else _REMEMBER,
        call.linkedid,
        call.started_at,
        at,
        *(getattr(ctx, name) for name in _CLIENT_COLUMNS),
        *_call_columns(call).values(),  # in _CALL_COLUMNS' order, as _REMEMBER lists them
    )


async def contexts(session: AsyncSession, linkedids: Iterable[str]) -> dict[str, CallContext]:
    """Who each call is with, as far as the CRM has matched it (absent: nobody yet)."""
    ids = sorted(set(linkedids))
    if not ids:
        return {}
    rows = await session.execute(_CONTEXTS, {"ids": ids})
    return {row.linkedid: _context(row) for row in rows}


async def end_calls(session: AsyncSession, linkedids: Iterable[str]) -> dict[str, CallContext]:
    """The calls are over and logged: their rows go in one statement, handing back who each
    was with (absent: nobody)."""
    ids = sorted(set(linkedids))
    if not ids:
        return {}
    rows = await session.execute(_END_CALLS, {"ids": ids})
    return {row.linkedid: _context(row) for row in rows}


async def load_matched(session: AsyncSession, contexts: Iterable[CallContext]) -> list[object]:
    """The cards and deals these calls were matched to, read at once: logging each call then
    finds them in the session. Hold the list while logging (the session keeps them weakly)."""
    ctxs = list(contexts)
    clients = sorted({c.client_id for c in ctxs if c.client_id is not None})
    deals = sorted({c.deal_id for c in ctxs if c.deal_id is not None})
    held: list[object] = []
    if clients:
        held += (await session.scalars(_CLIENTS, {"ids": clients})).all()
    if deals:
        held += (await session.scalars(_DEALS, {"ids": deals})).all()
    return held


async def active_calls(session: AsyncSession) -> list[ActiveCall]:
    return list((await session.scalars(select(ActiveCall).order_by(ActiveCall.started_at))).all())


def _agent_state_statement(*, free: bool) -> Insert:
    stmt = insert(cast(Table, AgentState.__table__))
    set_ = {
        "state": stmt.excluded.state,
        "linkedid": stmt.excluded.linkedid,
        "since": stmt.excluded.since,
    }
    if not free:
        return stmt.on_conflict_do_update(index_elements=["extension"], set_=set_)
    # only the call that made the agent busy frees them (calls overlap during transfers); the
    # row's linkedid stays NULL: a "free" is written with the linkedid it frees from
    return stmt.on_conflict_do_update(
        index_elements=["extension"],
        set_={**set_, "linkedid": None},
        where=(AgentState.linkedid == stmt.excluded.linkedid) | AgentState.linkedid.is_(None),
    )


_AGENT_STATE = _agent_state_statement(free=False)
_AGENT_FREED = _agent_state_statement(free=True)


# Agents ringing or talking on a call that is neither in `keep` nor a call's free (a restore
# that failed, a follower that took over from one that died): nothing will ever free them.
_FREE_OFF = text(
    "UPDATE agent_states SET state = 'free', linkedid = NULL, since = :at"
    " WHERE state <> 'free' AND linkedid IS NOT NULL AND NOT (linkedid = ANY(:keep))"
)


async def free_agents_off(session: AsyncSession, keep: Collection[str], at: datetime) -> None:
    """After a reconnect's reconcile: agents busy on a call Asterisk no longer has (`keep`:
    the calls it has, and those the same batch wrote) are free."""
    await session.execute(_FREE_OFF, {"keep": sorted(keep), "at": at})


async def set_agent_state(
    session: AsyncSession, extension: str, state: str, linkedid: str | None, at: datetime
) -> None:
    """Ringing/talking/free as the PBX reports it; a stale 'free' of another call is ignored."""
    row = {"extension": extension, "state": state, "linkedid": linkedid, "since": at}
    await session.execute(_AGENT_FREED if state == "free" else _AGENT_STATE, row)


async def forget_unresumable(session: AsyncSession) -> int:
    """Rows a crash left with a client but no tracker state: nothing can resume them (a call
    still up comes back by adoption after the PBX lists its channels)."""
    result = await session.execute(delete(ActiveCall).where(ActiveCall.tracker_state == {}))
    return int(getattr(result, "rowcount", 0) or 0)


class AgentPhones:
    """A batch's changes to agents' phones, written at once: one row per agent, not per fact.

    Each agent's changes are folded in order as `set_agent_state` would apply them one by one.
    Only a "free" that comes before anything else in the batch depends on the row as it is (was
    the agent busy with that call?), so those few are written conditionally, one by one.
    """

    def __init__(self) -> None:
        self._changes: dict[str, list[tuple[str, str | None, datetime]]] = {}

    def set(self, extension: str, state: str, linkedid: str | None, at: datetime) -> None:
        self._changes.setdefault(extension, []).append((state, linkedid, at))

    def folded(self) -> tuple[list[tuple[str, str | None, datetime]], list[dict[str, Any]]]:
        """(conditional frees as (extension, linkedid, at), final rows to upsert)."""
        frees: list[tuple[str, str | None, datetime]] = []
        rows: list[dict[str, Any]] = []
        for ext in sorted(self._changes):
            final: tuple[str, str | None, datetime] | None = None
            for state, linkedid, at in self._changes[ext]:
                if state != "free":
                    final = (state, linkedid, at)
                elif final is None:
                    frees.append((ext, linkedid, at))
                elif final[1] == linkedid or final[1] is None:
                    final = ("free", None, at)
            if final is not None:  # it overwrites whatever the frees before it did
                frees = [f for f in frees if f[0] != ext]
                rows.append(
                    {"extension": ext, "state": final[0], "linkedid": final[1], "since": final[2]}
                )
        return frees, rows

    async def write(self, session: AsyncSession) -> None:
        frees, rows = self.folded()
        self._changes.clear()
        for ext, linkedid, at in frees:
            await set_agent_state(session, ext, "free", linkedid, at)
        if rows:
            await session.execute(_AGENT_STATE, rows)
