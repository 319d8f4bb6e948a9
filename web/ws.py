"""Screen-pops and dashboards over a websocket (`/ws`), and the REST catch-up (`/api/events`).

A page connects to `/ws?token=<bearer token>[&last_seq=N][&channels=ext:101,supervisors]`, or to
`/ws` and sends `{"token": ..., "last_seq": N, "channels": [...]}` first (keeps the token out of
access logs). Without `channels` it gets its defaults (own phone, own user, supervisors for staff).

Server -> page, one JSON object per frame:
  {"type": "subscribed", "channels": [...], "last_seq": N}    once, after authentication
  {"seq": N, "channel": "ext:101", "type": "call.ringing", "payload": {...}, "at": "<ISO 8601>"}
  {"channel": "ext:101", "type": "call.ringing", "payload": {...}, "at": ...}    no seq: a
                                              screen-pop shown by the instance that made it
                                              before event_log numbered it; its numbered copy
                                              is not sent on this socket (but when the answer
                                              to its append is lost, or takes longer than
                                              SHOWN_WAIT_SECONDS)
  {"type": "replay.truncated", "after": N}    the page missed more than can be replayed: reload
  {"type": "ping"}                            answer {"type": "pong"} (any message counts)
  {"type": "system.status", "ami": "up"}     only when asked with "status": true (or &status=1):
                                              at once, then on every change of the PBX link
Close codes: 4401 no or bad token, or the sign-in ended (sign-out, new password, user disabled,
session expired; on whichever instance it happened), 4403 a channel the user may not read, 4400
bad request, 4008 too slow to read (queue full), 4000 no answer to pings, 1011 event hub not
running.

Every message type and the shape of its payload (of its fields, for the connection's own
messages) is one class of crm_core/events/messages.py, published as JSON Schemas by
`GET /api/events/schema`; the tests check every message sent against it.

The page remembers the highest `seq` it has seen and sends it back as `last_seq` on reconnect;
it then receives what it missed on its channels, in order, then live messages, with no duplicate
(but a screen-pop that came unnumbered: a page that reconnects, or reloads, before a numbered
message newer than the pop gets it once more, numbered; and, rarely, as said above, its numbered
copy on the same socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket, status
from pydantic import BaseModel, Field

from crm_core.events.messages import (
    PingMessage,
    ReplayTruncatedMessage,
    SubscribedMessage,
    SystemStatusMessage,
)
from notifier.channels import default_channels, may_read, parse_channels
from notifier.hub import Subscriber, control_frame
from web import health
from web.container import Container
from web.deps import CurrentUser, signin_from_token

logger = logging.getLogger(__name__)

router = APIRouter(tags=["events"])

AUTH_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 1.0
UNAUTHORIZED, FORBIDDEN, BAD_REQUEST, TOO_SLOW, NO_PONG = 4401, 4403, 4400, 4008, 4000
HUB_DOWN, GOING_AWAY = 1011, 1001
SESSION_ENDED = "sign-in ended"
STATUS_POLL_SECONDS = 2.0  # how soon a page's PBX light follows a change (an in-memory look)


@dataclass(frozen=True, slots=True)
class _Viewer:
    """The authenticated user, detached from the session that loaded it."""

    id: int
    role: str
    extension: str | None
    session_id: int = 0
    expires_at: datetime | None = None
    checked_at: float = 0.0  # loop time just before the session was found valid


class _Reject(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _watch_session(c: Container, viewer: _Viewer, sub: Subscriber) -> Callable[[], None]:
    """End the socket when its sign-in ends, here or on another instance."""
    watch = c.session_watch
    if watch is None or viewer.expires_at is None:
        return lambda: None
    return watch.watch(
        viewer.session_id,
        viewer.id,
        viewer.expires_at,
        viewer.checked_at,
        lambda: sub.fail(SESSION_ENDED),
    )


def _last_seq(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise _Reject(BAD_REQUEST, "last_seq must be an integer") from None
    if value < 0:
        raise _Reject(BAD_REQUEST, "last_seq must not be negative")
    return value


def _channels_for(viewer: _Viewer, raw: Any) -> frozenset[str]:
    if raw is not None and not isinstance(raw, str | list):
        raise _Reject(BAD_REQUEST, "channels must be a list or a comma-separated string")
    asked = parse_channels(raw)
    if not asked:
        return default_channels(viewer)
    for name in asked:
        if not may_read(viewer, name):
            raise _Reject(FORBIDDEN, f"not allowed to read {name[:60]}")
    return frozenset(asked)


async def _authenticate(ws: WebSocket, c: Container) -> tuple[_Viewer, dict[str, Any]]:
    """The user and their subscription request, from the query or else the first message."""
    request: dict[str, Any] = dict(ws.query_params)
    if not request.get("token"):
        try:
            first = json.loads(await asyncio.wait_for(ws.receive_text(), AUTH_TIMEOUT_SECONDS))
        except TimeoutError:
            raise _Reject(UNAUTHORIZED, "no token") from None
        except (ValueError, KeyError, RuntimeError):
            raise _Reject(UNAUTHORIZED, 'the first message must be {"token": ...}') from None
        if not isinstance(first, dict):
            raise _Reject(UNAUTHORIZED, 'the first message must be {"token": ...}')
        request.update(first)
    token = request.get("token")
    checked_at = asyncio.get_running_loop().time()
    try:
        async with c.sessions() as session:
            found = await signin_from_token(session, token if isinstance(token, str) else None)
            user = found.user
            viewer = _Viewer(
                user.id, user.role, user.extension, found.session_id, found.expires_at, checked_at
            )
    except HTTPException as exc:
        raise _Reject(UNAUTHORIZED, str(exc.detail)[:120]) from None
    return viewer, request


def _transport_of(send: Callable[..., Awaitable[None]]) -> Any:
    """The server's transport behind an ASGI send callable, if it can be found.

    ASGI has no way to drop a connection whose peer stopped reading: the close frame waits
    behind the full buffers. Aborting the transport is the only way to free them at once;
    when the server's internals differ, we fall back to a normal close (still bounded memory).
    """
    seen: set[int] = set()
    todo: list[Any] = [send]
    while todo:
        fn = todo.pop()
        if id(fn) in seen or len(seen) > 16:
            continue
        seen.add(id(fn))
        owner = getattr(fn, "__self__", None)
        transport = getattr(owner, "transport", None)
        if transport is not None and hasattr(transport, "abort"):
            return transport
        for cell in getattr(fn, "__closure__", None) or ():
            with contextlib.suppress(ValueError):
                if callable(cell.cell_contents):
                    todo.append(cell.cell_contents)
    return None


async def _close(ws: WebSocket, code: int, reason: str, *, abort_if_stuck: bool = False) -> None:
    try:
        await asyncio.wait_for(ws.close(code, reason), CLOSE_TIMEOUT_SECONDS)
        return
    except TimeoutError:
        pass
    except Exception:  # already closed by the peer
        return
    if abort_if_stuck:
        transport = _transport_of(ws._send)
        logger.info(
            "close frame stuck behind unread data: %s",
            "aborting" if transport else "left to the server",
        )
        if transport is not None:
            transport.abort()


async def _writer(ws: WebSocket, sub: Subscriber) -> None:
    while True:
        for frame in await sub.next_frames():
            await ws.send_text(frame)


async def _reader(ws: WebSocket, seen: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        # any message proves the page alive; {"type": "pong"} is the usual one
        seen[0] = loop.time()


async def _heartbeat(sub: Subscriber, interval: float, seen: list[float]) -> None:
    loop = asyncio.get_running_loop()
    ping = control_frame(PingMessage.TYPE)
    # a random phase: pages that (re)connected together must not all ping in the same instant
    await asyncio.sleep(interval * random.uniform(0.5, 1.0))
    while True:
        if loop.time() - seen[0] > 2 * interval:
            return
        sub.control(ping)
        await asyncio.sleep(interval)


async def _status_feed(sub: Subscriber, c: Container) -> None:
    """The page's "is the PBX followed?" light: the AMI state now, then each change."""
    shown = None
    while True:
        state = health.parts(c)["ami"]
        if state != shown:
            sub.control(control_frame(SystemStatusMessage.TYPE, ami=state))
            shown = state
        await asyncio.sleep(STATUS_POLL_SECONDS)


def _wants_status(raw: Any) -> bool:
    return raw is True or (isinstance(raw, str) and raw.lower() in ("1", "true", "yes"))


async def _pump(
    ws: WebSocket, sub: Subscriber, heartbeat_seconds: float, status_of: Container | None = None
) -> None:
    seen = [asyncio.get_running_loop().time()]
    writer = asyncio.create_task(_writer(ws, sub))
    reader = asyncio.create_task(_reader(ws, seen))
    beat = asyncio.create_task(_heartbeat(sub, heartbeat_seconds, seen))
    dropped = asyncio.create_task(sub.wait_failed())
    tasks: tuple[asyncio.Task[Any], ...] = (writer, reader, beat, dropped)
    if status_of is not None:
        tasks = (*tasks, asyncio.create_task(_status_feed(sub, status_of)))
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if sub.closed_reason is not None:
        reason = sub.closed_reason
        if reason == SESSION_ENDED:  # the page signs out on 4401
            await _close(ws, UNAUTHORIZED, reason)
            return
        slow = reason.startswith("too slow")
        logger.warning("dropping websocket of %s: %s", sorted(sub.channels), reason)
        await _close(ws, TOO_SLOW if slow else GOING_AWAY, reason[:120], abort_if_stuck=slow)
    elif beat.done() and not beat.cancelled():
        logger.info("closing websocket of %s: no pong", sorted(sub.channels))
        await _close(ws, NO_PONG, "heartbeat timeout", abort_if_stuck=True)


@router.websocket("/ws")
async def events_socket(ws: WebSocket) -> None:
    c: Container = ws.app.state.container
    await ws.accept()  # before closing with an application code: a rejected handshake has none
    hub = c.hub
    if hub is None:
        await _close(ws, HUB_DOWN, "event hub not running")
        return
    try:
        viewer, request = await _authenticate(ws, c)
        channels = _channels_for(viewer, request.get("channels"))
        last_seq = _last_seq(request.get("last_seq"))
    except _Reject as reject:
        await _close(ws, reject.code, reject.reason)
        return
    # registered before the replay query, so nothing committed meanwhile can fall between them
    sub = hub.subscribe(channels)
    unwatch = _watch_session(c, viewer, sub)
    try:
        hello = control_frame(
            SubscribedMessage.TYPE, channels=sorted(channels), last_seq=hub.last_seq
        )
        await ws.send_text(hello)
        after = last_seq or 0
        if last_seq is not None:
            replay = await hub.replay(channels, last_seq)
            if replay.truncated:
                await ws.send_text(control_frame(ReplayTruncatedMessage.TYPE, after=last_seq))
            else:
                for env in replay.envelopes:
                    await ws.send_text(env.frame)
                    after = env.seq
        sub.go_live(after)
        status_of = c if _wants_status(request.get("status")) else None
        await _pump(ws, sub, c.settings.notifier.ws_heartbeat_seconds, status_of)
    except Exception as exc:  # the page went away mid-replay, or the database did
        logger.debug("websocket ended: %s: %s", type(exc).__name__, exc)
        await _close(ws, HUB_DOWN, "internal error")
    finally:
        unwatch()
        hub.unsubscribe(sub)


class EventFrame(BaseModel):
    """One message as the websocket delivered it; its payload's shape, by `type`, is in the
    catalogue at /api/events/schema."""

    seq: int
    channel: str
    type: str
    payload: dict[str, Any] = Field(description="as /api/events/schema describes for `type`")
    at: str


class MissedEvents(BaseModel):
    channels: list[str]
    events: list[EventFrame]
    more: bool = Field(description="more after these: ask again with after=last_seq")
    gap: bool = Field(description="older events were already cleaned up: reload the page's state")
    last_seq: int


@router.get("/api/events")
async def missed_events(
    request: Request,
    user: CurrentUser,
    after: Annotated[int, Query(ge=0)],
    channels: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> MissedEvents:
    """Events of the user's channels after seq `after` (a page reloaded while the phone rings)."""
    c: Container = request.app.state.container
    hub = c.hub
    if hub is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="event hub not running")
    viewer = _Viewer(user.id, user.role, user.extension)
    try:
        names = _channels_for(viewer, channels)
    except _Reject as reject:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=reject.reason) from None
    # everything up to what this instance has dispatched is committed, so the query sees it
    position = hub.last_seq
    replay = await hub.replay(names, after, limit)
    events = [json.loads(env.frame) for env in replay.envelopes]
    return MissedEvents(
        channels=sorted(names),
        events=[EventFrame.model_validate(e) for e in events],
        more=replay.more,
        gap=replay.gap,
        last_seq=events[-1]["seq"]
        if replay.more
        else max(after, position, *(e["seq"] for e in events)),
    )
