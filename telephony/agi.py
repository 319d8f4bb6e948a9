"""FastAGI server on a plain asyncio Protocol: Asterisk asks "whom does this call ring?"; we answer.

Ours rather than panoramisk's `fast_agi`, which does not run on Python 3.11 (PANORAMISK.md #13).

One request, as the dialplan's `AGI(agi://127.0.0.1:4574/route)` makes it:
  Asterisk -> `agi_<name>: <value>` lines, then a blank line
  us       -> `SET VARIABLE CRM_TARGET "101"`   Asterisk -> `200 result=1`
  us       -> `SET VARIABLE CRM_CLIENT_ID "7"`  Asterisk -> `200 result=1` …, then close.
One command at a time: Asterisk reads commands with fgets on a stdio stream and polls the socket
between them (res/res_agi.c), so a command written before the previous reply is not seen until
the socket closes (5.4 s of silence for a known caller on a live Asterisk 22 when pipelined).
Whatever goes wrong (garbage, a silent or vanished peer, a slow or absent database) the call must
not hang in the dialplan: every read is bounded, the router is bounded, and the worst answer is an
empty CRM_TARGET, on which the dialplan falls back to the queue.

Who may talk to it: only the PBX addresses allowed (AGI_ALLOWED_HOSTS; others are reset before a
byte is read), at most so many connections per address, and a connection that has not sent its
environment soon (Asterisk sends it the moment it connects) is closed. When an address or the
server is at its cap, the oldest connection still waiting for its environment makes room: a
crowd of idle sockets can no longer turn the real requests away.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import cast
from urllib.parse import urlsplit

from crm_core.routing.router import Decision
from crm_core.routing.rules import Reason, RouteDecision

logger = logging.getLogger(__name__)

Route = Callable[[str, str, Mapping[str, str]], Awaitable[RouteDecision]]

ROUTE_SCRIPT = "route"
# `crm-telephony check` asks this script as Asterisk would: answered without routing (no turn
# taken, nothing counted), with two commands so a server that pipelines them shows up.
CHECK_SCRIPT = "check"
CHECK_COMMANDS = ['SET VARIABLE CRM_TARGET ""', 'SET VARIABLE CRM_CHECK "ok"']
MAX_LINE = 4096  # a real environment line is < 200 bytes
MAX_ENV_LINES = 256  # Asterisk sends ~25 (plus agi_arg_N); more is not Asterisk
MAX_ENV_BYTES = 64 * 1024
EMPTY = RouteDecision(reason=Reason.not_routed)
LOOPBACK = ("127.0.0.0/8", "::1")
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# --- the protocol, pure --------------------------------------------------------------------


def parse_env_line(line: str) -> tuple[str, str] | None:
    """`agi_callerid: +7916…` -> ("agi_callerid", "+7916…"); anything else -> None."""
    name, sep, value = line.partition(":")
    if not sep or not name.startswith("agi_") or " " in name:
        return None
    return name, value.strip()


def parse_env(lines: list[str]) -> dict[str, str]:
    """The `agi_*` pairs of an environment block; other lines (garbage) are skipped."""
    env: dict[str, str] = {}
    for line in lines:  # parse_env_line, inlined: ~25 lines per call, on every call
        name, sep, value = line.partition(":")
        if sep and name[:4] == "agi_" and " " not in name:
            env[name] = value.strip()
    return env


def script_of(env: Mapping[str, str]) -> str:
    """The requested script: `route` from agi_network_script, else from the agi_request URL."""
    script = env.get("agi_network_script", "")
    if not script and "://" in env.get("agi_request", ""):
        script = urlsplit(env["agi_request"]).path
    return script.split("?", 1)[0].strip("/")


def quote(value: str) -> str:
    """An AGI argument: double-quoted, with quotes and backslashes escaped, on one line."""
    clean = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ").replace("\r", " ")
    return f'"{clean}"'


def commands_for(decision: RouteDecision) -> list[str]:
    commands = [f"SET VARIABLE CRM_TARGET {quote(decision.target)}"]
    if decision.client_id is not None:
        commands.append(f"SET VARIABLE CRM_CLIENT_ID {quote(str(decision.client_id))}")
    if decision.deal_id is not None:
        commands.append(f"SET VARIABLE CRM_DEAL_ID {quote(str(decision.deal_id))}")
    return commands


def reply_code(line: str) -> tuple[int | None, bool]:
    """(code, final) of one reply line: `200 result=1` -> (200, True); `520-…` -> (520, False)."""
    if len(line) >= 3 and line[:3].isdigit():
        return int(line[:3]), line[3:4] != "-"
    return None, False


# --- who may connect ---------------------------------------------------------------------------


def peer_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A peer's address as the allow list compares it: an IPv4 peer of a dual-stack socket
    (`::ffff:10.0.0.5`) as IPv4, a link-local one without its zone (`fe80::1%eth0`)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class HostAllowList:
    """The PBX addresses the server answers: addresses, networks (CIDR) and host names.

    Names are resolved when the server starts and again (at most every `refresh` seconds) when
    an unknown peer knocks: a PBX container re-created with a new address is let in again.
    Each peer's verdict is cached, so a connection costs one dict lookup.
    """

    def __init__(self, entries: Iterable[str], *, refresh: float = 10.0) -> None:
        self.networks: list[IpNetwork] = []
        self.names: list[str] = []
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.append(entry)
        self._resolved: list[IpNetwork] = []
        self._refresh = refresh
        self._resolved_at = -float("inf")
        self._resolving: asyncio.Task[None] | None = None
        self._verdicts: dict[str, bool] = {}

    def __call__(self, host: str) -> bool:
        verdict = self._verdicts.get(host)
        if verdict is None:
            ip = peer_address(host)
            verdict = ip is not None and any(ip in net for net in (*self.networks, *self._resolved))
            if len(self._verdicts) >= 4096:  # many strangers: forget, never grow without bound
                self._verdicts.clear()
            self._verdicts[host] = verdict
        return verdict

    async def resolve(self) -> None:
        """Look the names up now (a name that does not resolve is logged and skipped)."""
        loop = asyncio.get_running_loop()
        self._resolved_at = loop.time()
        found: list[IpNetwork] = []
        for name in self.names:
            try:
                infos = await loop.getaddrinfo(name, None, type=1)  # SOCK_STREAM: one per address
            except OSError as exc:
                logger.warning("FastAGI: allowed host %r does not resolve (%s)", name, exc)
                continue
            for info in infos:
                ip = peer_address(str(info[4][0]))
                if ip is not None:
                    found.append(ipaddress.ip_network(ip))
        self._resolved = found
        self._verdicts.clear()

    def stranger(self, loop: asyncio.AbstractEventLoop) -> None:
        """An unknown peer knocked: resolve the names again, unless that was done recently."""
        if not self.names or self._resolving is not None:
            return
        if loop.time() - self._resolved_at < self._refresh:
            return
        self._resolving = loop.create_task(self.resolve())
        self._resolving.add_done_callback(self._resolved_done)

    def _resolved_done(self, task: asyncio.Task[None]) -> None:
        self._resolving = None

    async def close(self) -> None:
        if self._resolving is not None:
            self._resolving.cancel()
            await asyncio.gather(self._resolving, return_exceptions=True)


# --- the server ----------------------------------------------------------------------------


class AgiServer:
    """Serves FastAGI requests; `route` decides, this only speaks the protocol."""

    def __init__(
        self,
        route: Route,
        host: str = "127.0.0.1",
        port: int = 4574,
        *,
        read_timeout: float = 5.0,
        route_timeout: float = 3.0,
        env_timeout: float = 2.0,
        backlog: int = 1024,
        max_connections: int = 4096,
        max_connections_per_host: int = 512,
        allowed_hosts: Iterable[str] = LOOPBACK,
        on_decision: Callable[[float], None] | None = None,
    ) -> None:
        self._route = route
        self._host = host
        self._port = port
        self._read_timeout = read_timeout
        self._route_timeout = route_timeout
        # Asterisk writes the environment as soon as it connects; a socket silent for longer
        # than this is not Asterisk, and holds a place a real request may need.
        self._env_timeout = env_timeout
        self._backlog = backlog
        self._max_connections = max_connections
        self._max_per_host = max_connections_per_host
        self.allowed = HostAllowList(allowed_hosts)
        # open connections per peer address; a plain dict of counts, kept as they open and close
        self.per_host: dict[str, int] = {}
        self.refused = 0  # connections turned away (not allowed, or no room)
        self._refusals_logged_at = -float("inf")
        # Called with the seconds from a request's environment read to its answer written: the
        # routing decision as the server sees it, database included (bench/agi_bench.py).
        self.on_decision = on_decision
        self._server: asyncio.AbstractServer | None = None
        # Insertion-ordered (a dict, not a set): the oldest waiting connection is found first.
        self._connections: dict[_Connection, None] = {}
        # One timer for all connections rather than one per connection and phase (see _sweep).
        self._tick = min(max(min(read_timeout, route_timeout, env_timeout) / 4, 0.01), 0.5)
        self._sweeper: asyncio.TimerHandle | None = None
        self.served = 0

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        sockets = getattr(self._server, "sockets", None)
        if not sockets:
            return self._port
        port: int = sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await self.allowed.resolve()
        self._server = await loop.create_server(
            lambda: _Connection(self, loop), self._host, self._port, backlog=self._backlog
        )
        self._sweeper = loop.call_later(self._tick, self._sweep, loop)
        logger.info(
            "FastAGI listening on %s:%s for %s",
            self._host,
            self.port,
            ", ".join([*map(str, self.allowed.networks), *self.allowed.names]) or "nobody",
        )

    def _admit(self, conn: _Connection, host: str) -> bool:
        """Count `conn` in, making room if its peer or the server is full; False: refuse it."""
        if not self.allowed(host):
            self.allowed.stranger(conn._loop)
            self._refuse(f"{host} is not in AGI_ALLOWED_HOSTS")
            return False
        count = self.per_host.get(host, 0)
        if count >= self._max_per_host:
            if not self._make_room(host):
                self._refuse(f"{host} has {count} connections open")
                return False
            count = self.per_host.get(host, 0)
        if len(self._connections) >= self._max_connections and not self._make_room(None):
            self._refuse(f"{len(self._connections)} connections open")
            return False
        self.per_host[host] = count + 1
        self._connections[conn] = None
        return True

    def _make_room(self, host: str | None) -> bool:
        """Close the oldest connection (of `host`, or any) still waiting for its environment."""
        for conn in self._connections:
            if conn._state == _ENV and (host is None or conn._peer == host):
                self._release(conn)  # now: its connection_lost comes a loop turn later
                conn._end("closed to make room: no environment yet")
                return True
        return False

    def _release(self, conn: _Connection) -> None:
        if self._connections.pop(conn, 0) is not None:
            return  # not counted in: refused, or already released
        count = self.per_host[conn._peer] - 1
        if count:
            self.per_host[conn._peer] = count
        else:
            del self.per_host[conn._peer]

    def _refuse(self, why: str) -> None:
        # a flood refuses thousands a second: one line per ten seconds says it all
        self.refused += 1
        now = time.monotonic()
        if now - self._refusals_logged_at >= 10.0:
            self._refusals_logged_at = now
            logger.warning("FastAGI: refusing connections (%d so far): %s", self.refused, why)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Time out connections past their deadline, a few times per timeout.

        A deadline is a float on the connection, set as a phase starts; a timer per connection
        and phase (three per request, each armed and cancelled) cost more under a burst than
        this scan of the open connections does a few times a second. A timeout fires up to a
        quarter of itself late, which is all the precision a call falling back needs.
        """
        now = loop.time()
        for conn in [c for c in self._connections if c.deadline <= now]:
            conn.expired()
        self._sweeper = loop.call_later(self._tick, self._sweep, loop)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        routing = [c.abort() for c in list(self._connections)]
        await asyncio.gather(*(t for t in routing if t is not None), return_exceptions=True)
        await self.allowed.close()

    async def __aenter__(self) -> AgiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# Connection states.
_ENV, _ROUTING, _REPLIES, _DONE = range(4)
OK_REPLY = b"200 result=1\n"  # Asterisk's answer to a command that worked


class _Connection(asyncio.Protocol):
    """One FastAGI request, as a plain protocol: no streams, no task unless the route awaits.

    Per request this costs a bytearray and a deadline (no timer: the server's sweep checks it);
    the route's future is awaited through a callback, not a task: under a burst of calls the
    server's CPU per request is the latency of the last call in the burst.
    """

    __slots__ = (
        "_asked",
        "_buf",
        "_caller",
        "_commands",
        "_eof",
        "_left",
        "_loop",
        "_peer",
        "_server",
        "_state",
        "_task",
        "_transport",
        "deadline",
    )

    def __init__(self, server: AgiServer, loop: asyncio.AbstractEventLoop) -> None:
        self._server = server
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._state = _ENV
        self._asked = 0.0
        self.deadline = float("inf")
        self._task: asyncio.Future[RouteDecision] | None = None
        self._caller = ""
        self._commands: list[str] = []
        self._left = 0
        self._eof = False
        self._peer = ""

    # --- transport events ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        server = self._server
        peer = transport.get_extra_info("peername")
        self._peer = str(peer[0]) if peer else ""
        if not server._admit(self, self._peer):
            self._state = _DONE
            transport.abort()  # a reset, at once: nothing is read from it
            return
        self._transport = transport
        self.deadline = self._loop.time() + server._env_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self._state = _DONE
        self._server._release(self)  # a no-op for one refused, or released to make room
        if self._task is not None:  # the caller hung up: the decision is moot
            self._task.cancel()
            self._task = None

    def eof_received(self) -> bool:
        if self._state == _ROUTING:
            self._eof = True  # answer anyway (the peer may only have shut down its side)
            return True
        self._end("connection closed")
        return False

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state == _REPLIES:
            if data == OK_REPLY and not self._buf:  # the usual reply, whole
                self._replied()
                return
            self._buf += data
            self._replies()
        elif state == _ENV:
            buf = self._buf
            buf += data
            end = _block_end(buf)
            if end < 0:
                if len(buf) > MAX_ENV_BYTES or buf.count(b"\n") > MAX_ENV_LINES:
                    self._end("no end of the AGI environment")
                return
            text = buf[:end].decode("utf-8", "replace")
            del buf[:end]
            lines = text.splitlines()
            if len(lines) > MAX_ENV_LINES or (
                len(text) > MAX_LINE and max(map(len, lines)) > MAX_LINE
            ):
                self._end("not an AGI environment")
                return
            self._environment(parse_env(lines))
        elif state == _ROUTING:
            self._buf += data  # nothing is expected before our commands; keep it for later
            if len(self._buf) > MAX_ENV_BYTES:
                self._end("unexpected data while routing")

    # --- the conversation ------------------------------------------------------------------

    def _environment(self, env: dict[str, str]) -> None:
        self.deadline = float("inf")
        if self._server.on_decision is not None:
            self._asked = time.perf_counter()
        script = script_of(env)
        if script == CHECK_SCRIPT:
            self._send(list(CHECK_COMMANDS))
            return
        if script != ROUTE_SCRIPT:
            # Not ours to answer; an empty target keeps a misconfigured dialplan on its fallback.
            logger.warning(
                "FastAGI: unknown script %r (from %s), answering no target",
                script,
                env.get("agi_channel", "?"),
            )
            self._answer(EMPTY)
            return
        server = self._server
        caller = self._caller = env.get("agi_callerid", "")
        did = env.get("agi_extension") or env.get("agi_dnid", "")
        try:
            coro = server._route(caller, did, env)
            task = asyncio.ensure_future(coro, loop=self._loop)
        except Exception as exc:
            self._route_failed(exc)
            return
        if task.done():  # an awaitable already resolved
            self._routed(task)
            return
        self._state = _ROUTING
        self._task = task
        if isinstance(task, Decision):
            task.then = self._routed  # answered in the router's own step, not a loop turn later
        else:
            task.add_done_callback(self._routed)
        self.deadline = self._loop.time() + server._route_timeout

    def _routed(self, task: asyncio.Future[RouteDecision]) -> None:
        if self._task is task:
            self._task = None
        if self._state not in (_ENV, _ROUTING):
            return  # timed out or the peer is gone
        if task.cancelled():
            self._route_failed(asyncio.CancelledError())
            return
        exc = task.exception()
        if exc is not None:
            self._route_failed(exc)
            return
        self._answer(task.result())

    def expired(self) -> None:
        """The deadline of the current phase has passed (called by the server's sweep)."""
        self.deadline = float("inf")
        if self._state == _ROUTING:
            self._route_timed_out()
        elif self._state != _DONE:
            self._end("read timeout")

    def _route_timed_out(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            if isinstance(task, Decision):
                task.then = None
            else:
                task.remove_done_callback(self._routed)
            task.cancel()
        self._route_failed(TimeoutError(f"no decision in {self._server._route_timeout} s"))

    def _route_failed(self, exc: BaseException) -> None:
        logger.error("routing %s failed: answering no target", self._caller, exc_info=exc)
        self._answer(RouteDecision(reason=Reason.unavailable))

    def _answer(self, decision: RouteDecision) -> None:
        """Send the first command; each reply sends the next (never two unanswered)."""
        self._send(commands_for(decision))

    def _send(self, commands: list[str]) -> None:
        transport = self._transport
        if transport is None or self._state == _DONE:
            return
        self._commands = commands
        self._left = len(commands)
        self._state = _REPLIES
        transport.write(f"{commands[0]}\n".encode())
        if self._asked:
            on_decision = self._server.on_decision
            if on_decision is not None:
                on_decision(time.perf_counter() - self._asked)
        if self._eof:
            self._end("connection closed")
            return
        self.deadline = self._loop.time() + self._server._read_timeout
        if self._buf:
            self._replies()

    def _replies(self) -> None:
        buf = self._buf
        while (end := buf.find(b"\n")) >= 0:
            line = buf[:end].decode("utf-8", "replace").rstrip("\r")
            del buf[: end + 1]
            if line == "HANGUP":  # the channel hung up: the remaining replies are moot
                self._finish()
                return
            code, final = reply_code(line)
            if code is None or not final:
                continue  # a usage text line, or noise before the reply
            if code != 200:
                command = self._commands[len(self._commands) - self._left]
                logger.warning("FastAGI: %r answered %r", command, line)
            if not self._replied():
                return
        if len(buf) > MAX_LINE:
            self._end("line too long")

    def _replied(self) -> bool:
        """The current command is answered: send the next, or finish. Whether one was sent."""
        self._left -= 1
        if not self._left:
            self._finish()
            return False
        if self._transport is not None:
            command = self._commands[len(self._commands) - self._left]
            self._transport.write(f"{command}\n".encode())
            self.deadline = self._loop.time() + self._server._read_timeout
        return True

    def _finish(self) -> None:
        self._server.served += 1
        self._close()

    def _end(self, why: str) -> None:
        logger.debug("FastAGI connection ended early: %s", why)
        self._close()

    def _close(self) -> None:
        self._state = _DONE
        self.deadline = float("inf")
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> asyncio.Future[RouteDecision] | None:
        """Close now (the server stops); the route task, if any, to wait for."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        self._close()
        return task


def _block_end(buf: bytearray) -> int:
    """The offset just past the blank line that ends the environment, or -1 if not there yet."""
    if buf.startswith(b"\n"):
        return 1
    if buf.startswith(b"\r\n"):
        return 2
    ends = [i + n for i, n in ((buf.find(b"\n\n"), 2), (buf.find(b"\n\r\n"), 3)) if i >= 0]
    return min(ends) if ends else -1
