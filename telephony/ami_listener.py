"""The long-running AMI connection: supervision, back-pressure and the dispatch of events.

Bytes become messages in ``telephony/ami_wire.py``; the connection itself is panoramisk's
protocol with our remedies for its faults (``telephony/panoramisk_fixes.py``, each remedy
numbered as in docs/PANORAMISK.md). This module decides what a long-running service needs:

- one supervisor task owns connect / login / reconnect with float exponential backoff, and
  ``close()`` cancels it (#6, #7, #11); a Ping liveness check runs beside each session (#8);
- the protocol only enqueues events; one consumer task dispatches them in order (#3, #9):
  ``on_event`` sees every event, then the handlers registered by name with :meth:`AmiListener.on`;
- actions pending when a connection dies fail with :class:`AmiConnectionLost`; nothing is
  re-sent (#4); every action has a timeout (#10).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from telephony import ami_wire
from telephony.ami_errors import AmiActionTimeout as AmiActionTimeout
from telephony.ami_errors import AmiAuthError as AmiAuthError
from telephony.ami_errors import AmiConnectionLost as AmiConnectionLost
from telephony.ami_errors import AmiError as AmiError
from telephony.ami_errors import AmiNotConnected as AmiNotConnected
from telephony.panoramisk_fixes import AmiProtocol, OnComplete, open_connection
from telephony.settings import TelephonySettings

logger = logging.getLogger(__name__)

# What on_event receives, and what an action's reply list holds (names its callers import).
AmiEvent = ami_wire.AmiEvent
AmiMessage = ami_wire.AmiMessage
OnEvent = Callable[[AmiEvent, float], Awaitable[None]]
OnConnected = Callable[[list[dict[str, str]]], Awaitable[None]]
OnLost = Callable[[], Awaitable[None]]
OnState = Callable[["AmiState", str], None]

DEFAULT_MAX_MESSAGE_BYTES = ami_wire.DEFAULT_MAX_MESSAGE_BYTES
DEFAULT_QUEUE_SIZE = 10_000


class AmiState(enum.StrEnum):
    STOPPED = "stopped"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    AUTH_FAILED = "auth_failed"
    DISCONNECTED = "disconnected"
    CLOSED = "closed"


# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _EventItem:
    event: AmiEvent
    arrival: float


@dataclass(slots=True)
class _ConnectedItem:
    channels: list[dict[str, str]]


@dataclass(slots=True)
class _LostItem:
    """A logged-in connection ended: after its last event, before the next one's snapshot."""


_Item = _EventItem | _ConnectedItem | _LostItem


class AmiListener:
    """A supervised AMI connection delivering every event, in order, to ``on_event``.

    - ``on_event(event, arrival)``: awaited by one consumer task for each event (an
      :class:`~telephony.ami_wire.AmiEvent`, a read-only dict of the headers as Asterisk sent
      them; ``arrival`` is the epoch time the bytes arrived). An exception is logged and the next
      event is delivered. If the consumer falls behind, the bounded queue fills and reading from
      the socket pauses (back-pressure); events are never dropped.
    - :meth:`on` adds a handler for the events of one name, awaited after ``on_event``.
    - ``on_connected(channels)``: after each login, the result of CoreShowChannels (one dict per
      live channel), delivered through the same queue, in stream order with the events.
    - ``on_lost()``: a logged-in connection ended (or was closed), through the same queue after
      its last event: whatever it said is no longer news of the PBX until the next
      ``on_connected``.
    - ``on_state(state, detail)``: a plain function called on each state change.
    """

    def __init__(
        self,
        settings: TelephonySettings,
        on_event: OnEvent,
        on_connected: OnConnected | None = None,
        on_state: OnState | None = None,
        *,
        on_lost: OnLost | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.settings = settings
        self.max_message_bytes = max_message_bytes
        self._on_event = on_event
        self._on_connected = on_connected
        self._on_state = on_state
        self._on_lost = on_lost
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=queue_size)
        self._overflow: deque[_Item] = deque()
        self._state = AmiState.STOPPED
        self._last_error: str | None = None
        self._protocol: AmiProtocol | None = None
        # The dispatch table: event name -> handlers awaited after on_event (see _dispatch).
        self._handlers: dict[str, list[OnEvent]] = {}
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
        self._consumer = asyncio.create_task(self._consume(), name="ami-consumer")
        self._supervisor = asyncio.create_task(self._supervise(), name="ami-supervisor")

    def on(self, event_name: str, handler: OnEvent) -> None:
        """Also await ``handler(event, arrival)`` for every event named ``event_name``, after
        ``on_event`` and in stream order; its exceptions are logged like ``on_event``'s."""
        self._handlers.setdefault(event_name, []).append(handler)

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
    ) -> list[AmiMessage]:
        """Send an action; return its reply and, for list actions, the events that follow
        (CoreShowChannels -> [Response, CoreShowChannel..., CoreShowChannelsComplete]; an async
        Originate -> [Response, OriginateResponse]) (fault #9).

        Raises AmiNotConnected if not logged in (nothing sent), AmiActionTimeout after ``timeout``
        (default: settings.ami_action_timeout) (fault #10), AmiConnectionLost if the connection
        dies first: the action is never re-sent (fault #4). An ``Response: Error`` is returned,
        not raised. A line break in a field raises ValueError (nothing sent).
        """
        protocol = self._protocol
        if not self._logged_in or protocol is None or protocol.closed:
            raise AmiNotConnected(f"not connected to AMI ({self._state}); action not sent")
        wait = self.settings.ami_action_timeout if timeout is None else timeout
        return await protocol.request(action, wait)

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
        timeout = self.settings.ami_action_timeout
        host, port = self.settings.ami_host, self.settings.ami_port
        protocol = await open_connection(self, host, port, timeout)
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
            await protocol.login(self.settings.ami_username, self.settings.ami_secret, timeout)
            self._logged_in = True
            self._delay = self.settings.ami_reconnect_min
            self.connections += 1
            self._last_error = None
            self._connected_event.set()
            self._set_state(AmiState.CONNECTED, f"Asterisk Call Manager/{version}")
            pinger = asyncio.create_task(
                protocol.keep_alive(self.settings.ami_ping_interval, timeout), name="ami-ping"
            )
            try:
                await self._snapshot(protocol)
                await asyncio.shield(protocol.lost)
            finally:
                pinger.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pinger
        finally:
            if self._logged_in and self._on_lost is not None:
                self._enqueue(_LostItem())
            self._logged_in = False
            self._connected_event.clear()
            protocol.fail_pending("connection closed")
            protocol.close()

    async def _snapshot(self, protocol: AmiProtocol) -> None:
        def enqueue_snapshot(replies: list[AmiMessage]) -> None:
            if replies and replies[0].get("Response") == "Success":
                channels: list[dict[str, str]] = [
                    r for r in replies[1:] if r.get("Event") == "CoreShowChannel"
                ]
                self._enqueue(_ConnectedItem(channels))

        on_complete: OnComplete = enqueue_snapshot
        try:
            replies = await protocol.request(
                {"Action": "CoreShowChannels"}, self.settings.ami_action_timeout, on_complete
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

    # -- internals: what the protocol reports (panoramisk_fixes.ProtocolOwner) ------------------

    def protocol_connected(self, protocol: AmiProtocol) -> None:
        self._protocol = protocol
        if self._overflow:
            self._pause_reading()

    def protocol_lost(self, protocol: AmiProtocol) -> None:
        protocol.paused = False

    def event_received(self, event: AmiEvent, arrival: float) -> None:
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
                    await self._dispatch(item.event, item.arrival)
                elif isinstance(item, _ConnectedItem):
                    if self._on_connected is not None:
                        await self._on_connected(item.channels)
                elif self._on_lost is not None:
                    await self._on_lost()
            except Exception:
                # Fault #3: a handler's exception must not cost the connection or other events.
                logger.exception("ami: event handler failed on %r", item)
            finally:
                self._queue.task_done()

    async def _dispatch(self, event: AmiEvent, arrival: float) -> None:
        """The one place an event goes out: ``on_event``, then the handlers for its name."""
        try:
            await self._on_event(event, arrival)
        except Exception:
            # Fault #3: a handler's exception must not cost the connection or other events.
            logger.exception("ami: event handler failed on %r", event)
        for handler in self._handlers.get(event.name, ()):
            try:
                await handler(event, arrival)
            except Exception:
                logger.exception("ami: %s handler failed on %r", event.name, event)
