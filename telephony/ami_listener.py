"""The long-running AMI connection, built on panoramisk 1.4 with our remedies for its faults.

panoramisk gives us the action plumbing (ActionID generation, serialisation, the bookkeeping that
collects a multi-response action's replies into one result). Everything that decides whether a
long-running service survives is ours, each remedy commented with its number in
docs/PANORAMISK.md:

- the byte stream is split into messages *before* decoding and every message is parsed by us
  (#1, #2); malformed input is logged and skipped, never fatal;
- events are only enqueued by the protocol; one consumer task awaits ``on_event`` (#3, #9);
- one supervisor task owns connect / login / reconnect with float exponential backoff, which
  ``close()`` cancels (#6, #7, #11), and our own Ping liveness check (#8);
- actions pending when a connection dies fail with :class:`AmiConnectionLost`; nothing is
  re-sent (#4);
- Originate always carries ``Async: true`` (#5); every action has a timeout (#10).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from panoramisk import actions as pm_actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager
from panoramisk.message import Message

from telephony.settings import TelephonySettings

logger = logging.getLogger(__name__)
_V = TypeVar("_V")

AmiEvent = dict[str, str]
OnEvent = Callable[[AmiEvent, float], Awaitable[None]]
OnConnected = Callable[[list[AmiEvent]], Awaitable[None]]
OnState = Callable[["AmiState", str], None]

BANNER_PREFIX = b"Asterisk Call Manager/"
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
DEFAULT_QUEUE_SIZE = 10_000

# A blank line ends a message. Asterisk sends \r\n; a bare \n is tolerated as panoramisk does.
_MESSAGE_END = re.compile(rb"\r?\n\r?\n")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


class AmiState(enum.StrEnum):
    STOPPED = "stopped"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    AUTH_FAILED = "auth_failed"
    DISCONNECTED = "disconnected"
    CLOSED = "closed"


class AmiError(Exception):
    """Base class of the AMI errors raised to callers."""


class AmiNotConnected(AmiError):
    """No logged-in AMI connection right now; the action was not sent."""


class AmiConnectionLost(AmiError):
    """The connection died before the action was answered. It is NOT re-sent (fault #4):
    whether Asterisk executed it is unknown."""


class AmiActionTimeout(AmiError, TimeoutError):
    """No complete answer to an action within its timeout."""


class AmiAuthError(AmiError):
    """Asterisk refused the login."""


# --------------------------------------------------------------------------------------------
# Parsing: pure functions, usable without a socket.


class MalformedMessage(ValueError):
    pass


def parse_message(raw: bytes) -> AmiEvent:
    """Parse one AMI message (the bytes between two blank lines) into a dict.

    The whole message is decoded at once, so a character split across TCP reads is intact (#1).
    Invalid UTF-8 (a phone sending Latin-1 caller names) is replaced, not fatal: losing a call
    event is worse than one odd character. A value may be empty (``Value: `` -> "") (#2).
    Repeated headers (``ChanVariable``, ``Output``) are joined with "\\n", which cannot occur
    inside an AMI value, so nothing is lost.
    """
    text = raw.decode("utf-8", errors="replace")
    headers: AmiEvent = {}
    follows = False
    for n, line in enumerate(text.split("\n")):
        line = line.removesuffix("\r")
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not _HEADER_NAME.match(name):
            if follows:  # legacy "Response: Follows" body lines carry no header name
                name, value = "Output", line
            else:
                raise MalformedMessage(f"line {n + 1} is not a header: {line[:80]!r}")
        else:
            # Strip exactly the separator's space: a value's own content, even empty, is kept (#2).
            value = value.removeprefix(" ")
        if n == 0:
            if name not in ("Event", "Response"):
                raise MalformedMessage(f"first header is {name!r}, not Event or Response")
            follows = name == "Response" and value == "Follows"
        if name in headers:
            if name in ("Event", "Response"):
                raise MalformedMessage(f"two {name} headers: a message cut in half?")
            headers[name] = f"{headers[name]}\n{value}"
        else:
            headers[name] = value
    if not headers:
        raise MalformedMessage("empty message")
    return headers


def _header(message: Mapping[str, _V], name: str) -> _V | None:
    """Case-insensitive header lookup (Asterisk spells ActionID, ActionId... inconsistently)."""
    value = message.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in message.items():
        if key.lower() == lowered:
            return val
    return None


def _to_dict(message: Any) -> AmiEvent:
    return {str(k): str(v) for k, v in message.items()}


# --------------------------------------------------------------------------------------------
# panoramisk subclasses


class _Action(pm_actions.Action):  # type: ignore[misc]
    """panoramisk Action with a safe ``multi`` and a synchronous completion hook."""

    on_complete: Callable[[list[AmiEvent]], None] | None = None

    def __init__(self, fields: Mapping[str, Any]) -> None:
        super().__init__(fields)
        # The replies as we parsed them: panoramisk's Message adds a 'content' key of its own.
        self.replies: list[AmiEvent] = []

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


class _AmiProtocol(AMIProtocol):  # type: ignore[misc]
    """Byte-buffering AMI protocol: splits on blank lines, then decodes whole messages."""

    def __init__(self, listener: AmiListener) -> None:
        super().__init__()
        self._listener = listener
        self.banner: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.encoding = "utf-8"
        self.log = logger
        self._buf = bytearray()
        self._discarding = False
        self._listener._on_protocol_connected(self)

    # -- receiving -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # Fault #1: panoramisk decodes each read with errors='ignore', dropping the halves of a
        # multi-byte character split across reads. We keep bytes until a message is complete.
        arrival = time.time()
        buf = self._buf
        buf += data
        if not self.banner.done():
            newline = buf.find(b"\n")
            if newline < 0:
                if len(buf) > self._listener.max_message_bytes:
                    self._start_discarding("banner line too long")
                return
            first = bytes(buf[:newline]).rstrip(b"\r")
            version: str | None = None
            if first.startswith(BANNER_PREFIX):
                version = first[len(BANNER_PREFIX) :].decode("utf-8", "replace").strip()
                del buf[: newline + 1]
            self.version = version
            self.banner.set_result(version)
        start = 0
        while True:
            match = _MESSAGE_END.search(buf, start)
            if match is None:
                break
            raw = bytes(buf[start : match.start()])
            start = match.end()
            if self._discarding:
                # The tail of an oversized message: drop it, resume with the next message.
                self._discarding = False
                logger.warning("ami: skipped the end of an oversized message (%d bytes)", len(raw))
                continue
            self._handle_raw(raw, arrival)
        del buf[:start]
        if len(buf) > self._listener.max_message_bytes:
            self._start_discarding(f"message longer than {self._listener.max_message_bytes} bytes")

    def _start_discarding(self, why: str) -> None:
        logger.warning("ami: skipping malformed input: %s; %r...", why, bytes(self._buf[:80]))
        # Keep 3 bytes so that a blank line straddling this read and the next is still found.
        del self._buf[:-3]
        self._discarding = True

    def _handle_raw(self, raw: bytes, arrival: float) -> None:
        if not raw.strip():
            return
        try:
            message = parse_message(raw)
        except MalformedMessage as exc:
            logger.warning("ami: skipping malformed message: %s; %r", exc, raw[:200])
            return
        try:
            self.handle_message(message, arrival)
        except Exception:
            # Never let one message kill the connection (fault #3 in spirit).
            logger.exception("ami: failed to handle message %r", message)

    def handle_message(self, message: AmiEvent, arrival: float = 0.0) -> None:
        action_id = _header(message, "ActionID")
        action: _Action | None = self.responses.get(action_id) if action_id else None
        if action is not None:
            self._add_to_action(action, message)
            # OriginateResponse of our Originate is also a broadcast call event (it carries a
            # Privilege class); list items such as CoreShowChannel do not and stay private.
            if "Event" in message and "Privilege" in message:
                self._listener._enqueue_event(message, arrival)
            return
        if "Event" in message:
            # Faults #3, #9: no fnmatch handler lookup, no callbacks run inside the protocol:
            # every event is queued, in order, for the consumer task.
            self._listener._enqueue_event(message, arrival)
        else:
            logger.debug("ami: response to no pending action (timed out?): %r", message)

    def _add_to_action(self, action: _Action, message: AmiEvent) -> None:
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

    def send_action(self, action: _Action) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.send(action, as_list=action.as_list)
        return future

    def forget(self, action: _Action) -> None:
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
        # (#7, #11); ours fails pending actions and lets the supervisor decide.
        self.closed = True
        if getattr(self, "_buf", None) and bytes(self._buf).strip():
            logger.warning(
                "ami: connection lost inside a message; skipped %d bytes: %r",
                len(self._buf),
                bytes(self._buf[:200]),
            )
        self.fail_pending(str(exc) if exc else "closed")
        if not self.banner.done():
            self.banner.set_result(None)
        if not self.lost.done():
            self.lost.set_result(exc)
        self._listener._on_protocol_lost(self)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        self.transport.abort()


class _AmiManager(Manager):  # type: ignore[misc]
    """panoramisk's Manager, kept for its configuration and ``send_action`` plumbing.

    Its lifecycle machinery is bypassed: ``connect``/``connection_made`` (silent login retry,
    fault #6), ``connection_lost`` (int reconnect timeout, #11, that ``close`` cannot cancel, #7),
    ``ping`` (reply never checked, #8), ``dispatch`` (callbacks run in the protocol, #3; fnmatch
    patterns, #9) and ``send_awaiting_actions`` (re-sending, #4).
    """

    def __init__(self, listener: AmiListener, settings: TelephonySettings) -> None:
        super().__init__(
            host=settings.ami_host,
            port=settings.ami_port,
            username=settings.ami_username,
            secret=settings.ami_secret,
            encoding="utf-8",
            loop=asyncio.get_running_loop(),
            forgetable_actions=(),
        )
        self._listener = listener
        self.protocol: _AmiProtocol | None = None

    async def open(self, connect_timeout: float) -> _AmiProtocol:
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: _AmiProtocol(self._listener), self.config["host"], self.config["port"]
            ),
            connect_timeout,
        )
        assert isinstance(protocol, _AmiProtocol)
        protocol.factory = self
        self.protocol = protocol
        return protocol

    def dispatch(self, event: Any) -> list[str]:
        self._listener._enqueue_event(_to_dict(event), time.time())
        return []

    def connection_lost(self, exc: Exception | None) -> None:
        pass

    def ping(self) -> None:
        pass

    async def send_awaiting_actions(self, *_: Any) -> None:
        pass

    def close(self) -> None:
        if self.protocol is not None:
            self.protocol.close()


# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _EventItem:
    event: AmiEvent
    arrival: float


@dataclass(slots=True)
class _ConnectedItem:
    channels: list[AmiEvent]


_Item = _EventItem | _ConnectedItem


class AmiListener:
    """A supervised AMI connection delivering every event, in order, to ``on_event``.

    - ``on_event(event, arrival)``: awaited by one consumer task for each event (a dict of the
      headers as Asterisk sent them; ``arrival`` is the epoch time the bytes arrived). An exception
      is logged and the next event is delivered. If the consumer falls behind, the bounded queue
      fills and reading from the socket pauses (back-pressure); events are never dropped.
    - ``on_connected(channels)``: after each login, the result of CoreShowChannels (one dict per
      live channel), delivered through the same queue, in stream order with the events.
    - ``on_state(state, detail)``: a plain function called on each state change.
    """

    def __init__(
        self,
        settings: TelephonySettings,
        on_event: OnEvent,
        on_connected: OnConnected | None = None,
        on_state: OnState | None = None,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.settings = settings
        self.max_message_bytes = max_message_bytes
        self._on_event = on_event
        self._on_connected = on_connected
        self._on_state = on_state
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=queue_size)
        self._overflow: deque[_Item] = deque()
        self._state = AmiState.STOPPED
        self._last_error: str | None = None
        self._manager: _AmiManager | None = None
        self._protocol: _AmiProtocol | None = None
        self._logged_in = False
        self._connected_event = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._closing = False
        self._delay = settings.ami_reconnect_min
        self.connections = 0  # successful logins, for health pages and tests
        self.version: str | None = None

    # -- public API --------------------------------------------------------------------------

    @property
    def state(self) -> AmiState:
        return self._state

    @property
    def last_error(self) -> str | None:
        """Why the last attempt failed (e.g. "login refused: Authentication failed")."""
        return self._last_error

    @property
    def connected(self) -> bool:
        return self._logged_in

    async def start(self) -> None:
        if self._supervisor is not None:
            return
        self._closing = False
        self._manager = _AmiManager(self, self.settings)
        self._consumer = asyncio.create_task(self._consume(), name="ami-consumer")
        self._supervisor = asyncio.create_task(self._supervise(), name="ami-supervisor")

    async def wait_connected(self) -> None:
        """Wait until logged in (wrap in asyncio.timeout to bound it)."""
        await self._connected_event.wait()

    async def close(self, drain_timeout: float = 5.0) -> None:
        """Close the connection, cancel any scheduled reconnect (fault #7), fail pending actions,
        and give the consumer up to ``drain_timeout`` seconds to deliver queued events."""
        if self._closing and self._supervisor is None:
            return
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            if self._protocol is not None:
                # Python 3.11's wait_for drops a cancellation that races with its result (a
                # Login reply arriving as we close): the session then waits for the
                # connection to be lost, so lose it, or close() would wait forever.
                self._protocol.close()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        if self._protocol is not None:
            self._protocol.fail_pending("listener closed")
            self._protocol.close()
        self._set_state(AmiState.CLOSED, "closed by us")
        if self._consumer is not None:
            self._resume_reading_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), drain_timeout)
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None

    async def send_action(
        self,
        action: Mapping[str, str | Sequence[str]],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-action reply timeout, applied inside
    ) -> list[AmiEvent]:
        """Send an action; return its reply and, for list actions, the events that follow
        (CoreShowChannels -> [Response, CoreShowChannel..., CoreShowChannelsComplete]; an async
        Originate -> [Response, OriginateResponse]) (fault #9).

        Raises AmiNotConnected if not logged in (nothing sent), AmiActionTimeout after ``timeout``
        (default: settings.ami_action_timeout) (fault #10), AmiConnectionLost if the connection
        dies first: the action is never re-sent (fault #4). An ``Response: Error`` is returned,
        not raised.
        """
        protocol = self._protocol
        if not self._logged_in or protocol is None or protocol.closed:
            raise AmiNotConnected(f"not connected to AMI ({self._state}); action not sent")
        return await self._request(protocol, action, timeout)

    # -- internals: actions ----------------------------------------------------------------------

    async def _request(
        self,
        protocol: _AmiProtocol,
        action: Mapping[str, str | Sequence[str]],
        reply_timeout: float | None,
        on_complete: Callable[[list[AmiEvent]], None] | None = None,
    ) -> list[AmiEvent]:
        fields: dict[str, str | list[str]] = {}
        for key, value in action.items():
            values = [value] if isinstance(value, str) else list(value)
            for v in values:
                if "\r" in v or "\n" in v or "\r" in key or "\n" in key:
                    raise ValueError(f"AMI header {key!r} contains a line break")
            fields[key] = value if isinstance(value, str) else values
        name = str(_header(fields, "Action") or "")
        if name.lower() == "originate":
            # Fault #5: an Originate without Async breaks panoramisk's parser; and only an async
            # Originate reports its outcome (OriginateResponse) without blocking the session.
            for key in [k for k in fields if k.lower() == "async"]:
                if str(fields.pop(key)).lower() != "true":
                    logger.warning("ami: Originate always goes with Async: true")
            fields["Async"] = "true"
        act = _Action(fields)
        act.on_complete = on_complete
        future = protocol.send_action(act)
        wait = self.settings.ami_action_timeout if reply_timeout is None else reply_timeout
        try:
            # Fault #10: panoramisk's send_action has no timeout.
            await asyncio.wait_for(future, wait)
        except TimeoutError:
            protocol.forget(act)
            raise AmiActionTimeout(
                f"no complete reply to {name} (ActionID {act.action_id}) in {wait:g}s"
            ) from None
        return list(act.replies)

    # -- internals: lifecycle --------------------------------------------------------------------

    def _set_state(self, state: AmiState, detail: str = "", retry_in: float | None = None) -> None:
        self._state = state
        extra = {
            "ami_state": str(state),
            "ami_host": self.settings.ami_host,
            "ami_port": self.settings.ami_port,
            "ami_detail": detail,
            "ami_retry_in": retry_in,
        }
        if state is AmiState.AUTH_FAILED:
            logger.error(
                "ami state %s: %s; retrying in %.3gs", state, detail, retry_in or 0.0, extra=extra
            )
        elif retry_in is not None:
            logger.info("ami state %s: %s; retrying in %.3gs", state, detail, retry_in, extra=extra)
        else:
            logger.info("ami state %s: %s", state, detail, extra=extra)
        if self._on_state is not None:
            try:
                self._on_state(state, detail)
            except Exception:
                logger.exception("ami: on_state callback failed")

    async def _supervise(self) -> None:
        """Connect, log in, stay until the connection is lost, back off, repeat. Being a task,
        it is cancelled by close() whatever it waits for (fault #7)."""
        host, port = self.settings.ami_host, self.settings.ami_port
        while not self._closing:
            self._set_state(AmiState.CONNECTING, f"{host}:{port}")
            failure = AmiState.DISCONNECTED
            try:
                await self._session()
                detail = "connection lost"
            except AmiAuthError as exc:
                failure, detail = AmiState.AUTH_FAILED, str(exc)
            except ConnectionRefusedError:
                detail = "connection refused (nothing listens on that port)"
            except TimeoutError:
                detail = "timed out (host unreachable, or a firewall drops the packets)"
            except (OSError, AmiError, EOFError) as exc:
                detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except Exception as exc:  # a bug of ours must not end the service's AMI link
                logger.exception("ami: unexpected error in the connection")
                detail = f"{type(exc).__name__}: {exc}"
            self._last_error = detail
            if self._closing:
                break
            # Fault #11: float seconds, never int()-cast; fault #6: a refused login is retried
            # with the same growing delay and an error each time, never silently.
            delay = self._delay
            self._delay = min(max(delay * 2, 0.001), self.settings.ami_reconnect_max)
            self._set_state(failure, detail, retry_in=delay)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        assert self._manager is not None
        timeout = self.settings.ami_action_timeout
        protocol = await self._manager.open(timeout)
        try:
            try:
                version = await asyncio.wait_for(asyncio.shield(protocol.banner), timeout)
            except TimeoutError:
                raise AmiError(
                    f"connected, but no AMI banner within {timeout:g}s: is this Asterisk's "
                    "manager port?"
                ) from None
            if protocol.closed:
                raise EOFError("connection closed before the AMI banner")
            if version is None:
                raise AmiError("no 'Asterisk Call Manager' banner: is this an AMI port?")
            self.version = version
            reply = await self._request(
                protocol,
                {
                    "Action": "Login",
                    "Username": self.settings.ami_username,
                    "Secret": self.settings.ami_secret,
                    "Events": "on",
                },
                timeout,
            )
            if reply[0].get("Response") != "Success":
                # Fault #6: panoramisk ignores a refused login and retries forever, silently.
                raise AmiAuthError(
                    f"login refused for AMI user {self.settings.ami_username!r}: "
                    f"{reply[0].get('Message', reply[0])}"
                )
            self._logged_in = True
            self._delay = self.settings.ami_reconnect_min
            self.connections += 1
            self._last_error = None
            self._connected_event.set()
            self._set_state(AmiState.CONNECTED, f"Asterisk Call Manager/{version}")
            pinger = asyncio.create_task(self._ping_loop(protocol), name="ami-ping")
            try:
                await self._snapshot(protocol)
                await asyncio.shield(protocol.lost)
            finally:
                pinger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pinger
        finally:
            self._logged_in = False
            self._connected_event.clear()
            protocol.fail_pending("connection closed")
            protocol.close()

    async def _snapshot(self, protocol: _AmiProtocol) -> None:
        def enqueue_snapshot(replies: list[AmiEvent]) -> None:
            if replies and replies[0].get("Response") == "Success":
                channels = [r for r in replies[1:] if r.get("Event") == "CoreShowChannel"]
                self._enqueue(_ConnectedItem(channels))

        try:
            replies = await self._request(
                protocol, {"Action": "CoreShowChannels"}, None, on_complete=enqueue_snapshot
            )
        except AmiActionTimeout:
            logger.warning("ami: CoreShowChannels unanswered; dropping the connection")
            protocol.abort()
            return
        except AmiConnectionLost:
            return
        if replies[0].get("Response") != "Success":
            logger.error(
                "ami: CoreShowChannels refused (%s): calls in progress cannot be reconciled; "
                "grant the AMI user 'read = all'",
                replies[0].get("Message"),
            )

    async def _ping_loop(self, protocol: _AmiProtocol) -> None:
        # Fault #8: panoramisk sends Ping but never looks at the reply, so a half-open TCP
        # connection (peer gone, no RST) looks alive forever. No Pong in time -> drop, reconnect.
        interval = self.settings.ami_ping_interval
        while not protocol.closed:
            await asyncio.sleep(interval)
            if protocol.paused:
                continue  # our own back-pressure stalls replies: not the peer's fault
            try:
                await self._request(protocol, {"Action": "Ping"}, self.settings.ami_action_timeout)
            except AmiActionTimeout:
                logger.warning(
                    "ami: no Pong within %.1fs: connection is half-open, dropping it",
                    self.settings.ami_action_timeout,
                )
                protocol.abort()
                return
            except AmiError:
                return

    def _on_protocol_connected(self, protocol: _AmiProtocol) -> None:
        self._protocol = protocol
        if self._overflow:
            self._pause_reading()

    def _on_protocol_lost(self, protocol: _AmiProtocol) -> None:
        protocol.paused = False

    # -- internals: delivery ---------------------------------------------------------------------

    def _enqueue_event(self, event: AmiEvent, arrival: float) -> None:
        self._enqueue(_EventItem(event, arrival))

    def _enqueue(self, item: _Item) -> None:
        if self._overflow or self._queue.full():
            # Back-pressure: keep order, stop reading until the consumer catches up; never drop.
            self._overflow.append(item)
            self._pause_reading()
        else:
            self._queue.put_nowait(item)

    def _pause_reading(self) -> None:
        protocol = self._protocol
        if protocol is not None and not protocol.paused and not protocol.closed:
            protocol.paused = True
            protocol.transport.pause_reading()
            logger.warning("ami: event consumer is behind; pausing reads from Asterisk")

    def _resume_reading_all(self) -> None:
        protocol = self._protocol
        if protocol is not None and protocol.paused:
            protocol.paused = False
            if not protocol.closed:
                protocol.transport.resume_reading()
                logger.info("ami: event consumer caught up; reading again")

    def _refill(self) -> None:
        while self._overflow and not self._queue.full():
            self._queue.put_nowait(self._overflow.popleft())
        if not self._overflow:
            self._resume_reading_all()

    async def _consume(self) -> None:
        while True:
            item = await self._queue.get()
            self._refill()
            try:
                if isinstance(item, _EventItem):
                    await self._on_event(item.event, item.arrival)
                elif self._on_connected is not None:
                    await self._on_connected(item.channels)
            except Exception:
                # Fault #3: a handler's exception must not cost the connection or other events.
                logger.exception("ami: event handler failed on %r", item)
            finally:
                self._queue.task_done()
