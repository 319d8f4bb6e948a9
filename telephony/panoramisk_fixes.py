"""panoramisk 1.4 with our remedies for its faults: the one module that touches panoramisk.

From panoramisk we take the action plumbing: :class:`panoramisk.actions.Action` (ActionID
generation, the bookkeeping that gathers a multi-response action's replies into one result)
and :class:`panoramisk.ami_protocol.AMIProtocol` (``send`` and the table of actions awaiting
replies). Its ``Manager`` (connect, login, reconnect, ping, fnmatch callbacks) is not used: its
lifecycle is where most faults are, and :class:`telephony.ami_listener.AmiListener` supervises
the connection instead. Bytes are read and written by ``telephony/ami_wire.py``.

Each fault of docs/PANORAMISK.md and its remedy:

| #  | remedy |
|----|--------|
| 1  | :meth:`AmiProtocol.data_received` keeps bytes in an ``AmiFramer``: messages decoded whole |
| 2  | ``ami_wire`` keeps an empty value |
| 3  | no callbacks in the protocol: events go to the owner, whose ``event_received`` enqueues |
| 4  | :meth:`AmiProtocol.fail_pending`: unanswered actions fail with ``AmiConnectionLost`` |
| 5  | :attr:`PendingAction.multi` never reads ``async``; :meth:`AmiProtocol.request` sends every
|    | Originate with ``Async: true`` |
| 6  | :meth:`AmiProtocol.login` raises ``AmiAuthError`` |
| 7, 11 | Manager's reconnect is not used: :meth:`AmiProtocol.connection_lost` only reports; the
|    | listener's supervisor task backs off in float seconds and is cancelled by ``close`` |
| 8  | :meth:`AmiProtocol.keep_alive` checks each Pong and drops a link that does not answer |
| 9  | every event goes to the owner (no fnmatch); a multi-response action's events come back
|    | in :meth:`AmiProtocol.request`'s list |
| 10 | :meth:`AmiProtocol.request` has a timeout |
| 12 | ``panoramisk.testing`` is never imported |
| 13 | ``fast_agi`` is not used: telephony/agi.py |
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from panoramisk import actions as pm_actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from telephony.ami_errors import AmiActionTimeout, AmiAuthError, AmiConnectionLost, AmiError
from telephony.ami_wire import (
    AmiEvent,
    AmiFramer,
    AmiMessage,
    AmiResponse,
    Banner,
    action_headers,
    parse_message,
    serialize,
)

logger = logging.getLogger(__name__)

OnComplete = Callable[[list[AmiMessage]], None]


class ProtocolOwner(Protocol):
    """What the protocol reports to (the listener)."""

    max_message_bytes: int

    def protocol_connected(self, protocol: AmiProtocol) -> None: ...

    def protocol_lost(self, protocol: AmiProtocol) -> None: ...

    def event_received(self, event: AmiEvent, arrival: float) -> None:
        """Called inside ``data_received``: must only enqueue (fault #3)."""


class PendingAction(pm_actions.Action):  # type: ignore[misc]
    """An action we send: panoramisk's Action, written by ``ami_wire``, with a safe ``multi``,
    our parsed replies and a synchronous completion hook."""

    def __init__(
        self, fields: Mapping[str, str | Sequence[str]], on_complete: OnComplete | None = None
    ) -> None:
        super().__init__(fields)
        # The replies as we parsed them: panoramisk's Message adds a 'content' key of its own.
        self.replies: list[AmiMessage] = []
        self.on_complete = on_complete
        # Serialised now, so a line break in a value raises here, to the caller, instead of
        # inside AMIProtocol.send, which would log it and leave the action waiting forever.
        self._text = serialize(action_headers(self)).decode("utf-8")

    def __str__(self) -> str:
        return self._text

    @property
    def multi(self) -> bool:
        # Fault #5: panoramisk reads self['async'], a KeyError for an Originate without Async,
        # raised inside data_received, which kills the connection.
        resp = self.responses[0]
        msg = str(resp.get("message", "")).lower()
        if self.as_list is not None:
            return bool(self.as_list)
        if str(resp.get("eventlist", "")).lower() == "start" or "will follow" in msg:
            return True
        if msg.startswith("added") and msg.endswith("to queue"):
            return True
        return msg.endswith("successfully queued") and str(self.get("async", "false")) != "false"


class AmiProtocol(AMIProtocol):  # type: ignore[misc]
    """One AMI connection: bytes to messages (``ami_wire``), replies to their actions, events
    to the owner. Never re-sends, never reconnects: the owner decides."""

    def __init__(self, owner: ProtocolOwner) -> None:
        super().__init__()
        self._owner = owner
        loop = asyncio.get_running_loop()
        self.banner: asyncio.Future[str | None] = loop.create_future()
        self.lost: asyncio.Future[Exception | None] = loop.create_future()
        self.paused = False  # reading paused by the owner's back-pressure
        self._framer = AmiFramer(parse_message, max_message_bytes=owner.max_message_bytes)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.encoding = "utf-8"
        self.log = logger
        self._owner.protocol_connected(self)

    # -- receiving -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        arrival = time.time()
        for message in self._framer.feed(data):
            if isinstance(message, Banner):
                self.version = message.version
                if not self.banner.done():
                    self.banner.set_result(message.version)
                continue
            try:
                self.handle_message(message, arrival)
            except Exception:
                # Never let one message kill the connection (fault #3 in spirit).
                logger.exception("ami: failed to handle message %r", message)

    def handle_message(self, message: AmiEvent | AmiResponse, arrival: float = 0.0) -> None:
        action_id = message.action_id if self.responses else None
        action: PendingAction | None = self.responses.get(action_id) if action_id else None
        if action is not None:
            self._add_to_action(action, message)
            # OriginateResponse of our Originate is also a broadcast call event (it carries a
            # Privilege class); list items such as CoreShowChannel do not and stay private.
            if isinstance(message, AmiEvent) and "Privilege" in message:
                self._owner.event_received(message, arrival)
            return
        if isinstance(message, AmiEvent):
            # Faults #3, #9: no fnmatch handler lookup, no callbacks run inside the protocol.
            self._owner.event_received(message, arrival)
        else:
            logger.debug("ami: response to no pending action (timed out?): %r", message)

    def _add_to_action(self, action: PendingAction, message: AmiMessage) -> None:
        action.replies.append(message)
        try:
            completed = action.add_message(Message(message))
        except Exception as exc:
            logger.exception("ami: could not match a reply to action %s", action.get("action"))
            self.forget(action)
            if not action.future.done():
                action.future.set_exception(AmiError(f"bad reply: {exc}"))
            return
        if completed:
            self.forget(action)
            if action.on_complete is not None:
                # Called synchronously, so a marker it enqueues sits exactly at this point of the
                # stream, before any event that followed the reply.
                action.on_complete(list(action.replies))

    # -- sending ---------------------------------------------------------------------------

    async def request(
        self,
        fields: Mapping[str, str | Sequence[str]],
        timeout: float,  # noqa: ASYNC109 - a reply timeout, applied inside
        on_complete: OnComplete | None = None,
    ) -> list[AmiMessage]:
        """Send an action; return its reply and, for list actions, the events that follow
        (fault #9). Raises ValueError for a line break in a field (nothing sent),
        :class:`AmiActionTimeout` (fault #10), :class:`AmiConnectionLost` (fault #4)."""
        action = self._action(fields, on_complete)
        future: asyncio.Future[Any] = self.send(action, as_list=action.as_list)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self.forget(action)
            raise AmiActionTimeout(
                f"no complete reply to {action.get('action')} (ActionID {action.action_id}) "
                f"in {timeout:g}s"
            ) from None
        return list(action.replies)

    @staticmethod
    def _action(
        fields: Mapping[str, str | Sequence[str]], on_complete: OnComplete | None
    ) -> PendingAction:
        sent = dict(fields)
        if str(sent.get("Action", sent.get("action", ""))).lower() == "originate":
            # Fault #5: an Originate without Async breaks panoramisk's parser; and only an async
            # Originate reports its outcome (OriginateResponse) without blocking the session.
            for key in [k for k in sent if k.lower() == "async"]:
                if str(sent.pop(key)).lower() != "true":
                    logger.warning("ami: Originate always goes with Async: true")
            sent["Async"] = "true"
        return PendingAction(sent, on_complete)

    async def login(self, username: str, secret: str, timeout: float) -> None:  # noqa: ASYNC109
        reply = await self.request(
            {"Action": "Login", "Username": username, "Secret": secret, "Events": "on"}, timeout
        )
        if reply[0].get("Response") != "Success":
            # Fault #6: panoramisk ignores a refused login and retries forever, silently.
            raise AmiAuthError(
                f"login refused for AMI user {username!r}: {reply[0].get('Message', reply[0])}"
            )

    async def keep_alive(self, interval: float, timeout: float) -> None:  # noqa: ASYNC109
        """Ping every ``interval`` s; no Pong within ``timeout`` s -> drop the connection.

        Fault #8: panoramisk sends Ping but never looks at the reply, so a half-open TCP
        connection (peer gone, no RST) looks alive forever."""
        while not self.closed:
            await asyncio.sleep(interval)
            if self.paused:
                continue  # our own back-pressure stalls replies: not the peer's fault
            try:
                await self.request({"Action": "Ping"}, timeout)
            except AmiActionTimeout:
                logger.warning(
                    "ami: no Pong within %.1fs: connection is half-open, dropping it", timeout
                )
                self.abort()
                return
            except AmiError:
                return

    def forget(self, action: PendingAction) -> None:
        self.responses.pop(action.id, None)
        if action.action_id:
            self.responses.pop(action.action_id, None)

    def fail_pending(self, reason: str) -> None:
        # Fault #4: panoramisk's close() moves unanswered actions to awaiting_actions and sends
        # them again after the next FullyBooted: an Originate would ring a client twice. We fail
        # them to their caller instead.
        pending = {id(a): a for a in self.responses.values()}
        self.responses.clear()
        for action in pending.values():
            if not action.future.done():
                action.future.set_exception(
                    AmiConnectionLost(
                        f"{action.get('action')} (ActionID {action.action_id}) unanswered when "
                        f"the connection was lost ({reason}); it will not be re-sent"
                    )
                )

    # -- closing ---------------------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        # panoramisk's version re-queues actions (#4) and schedules an uncancellable reconnect
        # (#7, #11); ours fails pending actions and lets the owner decide.
        self.closed = True
        cut = self._framer.pending
        if cut.strip():
            logger.warning(
                "ami: connection lost inside a message; skipped %d bytes: %r", len(cut), cut[:200]
            )
        self.fail_pending(str(exc) if exc else "closed")
        if not self.banner.done():
            self.banner.set_result(None)
        if not self.lost.done():
            self.lost.set_result(exc)
        self._owner.protocol_lost(self)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        self.transport.abort()


async def open_connection(
    owner: ProtocolOwner,
    host: str,
    port: int,
    timeout: float,  # noqa: ASYNC109 - the connect timeout, applied inside
) -> AmiProtocol:
    """A TCP connection to Asterisk's manager port, read by a fresh :class:`AmiProtocol`."""
    loop = asyncio.get_running_loop()
    _, protocol = await asyncio.wait_for(
        loop.create_connection(lambda: AmiProtocol(owner), host, port), timeout
    )
    assert isinstance(protocol, AmiProtocol)
    return protocol
