"""FastAGI server on asyncio streams: Asterisk asks "whom does this call ring?", we set CRM_TARGET.

Ours rather than panoramisk's `fast_agi`, which does not run on Python 3.11 (PANORAMISK.md #13).

One request, as the dialplan's `AGI(agi://127.0.0.1:4574/route)` makes it:
  Asterisk -> `agi_<name>: <value>` lines, then a blank line
  us       -> `SET VARIABLE CRM_TARGET "101"`   Asterisk -> `200 result=1`
  us       -> `SET VARIABLE CRM_CLIENT_ID "7"` … (sent together; one reply each), then close.
Whatever goes wrong (garbage, a silent or vanished peer, a slow or absent database) the call must
not hang in the dialplan: every read is bounded, the router is bounded, and the worst answer is an
empty CRM_TARGET, on which the dialplan falls back to the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

from crm_core.routing.rules import Reason, RouteDecision

logger = logging.getLogger(__name__)

Route = Callable[[str, str, Mapping[str, str]], Awaitable[RouteDecision]]

ROUTE_SCRIPT = "route"
MAX_LINE = 4096  # a real environment line is < 200 bytes
MAX_ENV_LINES = 256  # Asterisk sends ~25 (plus agi_arg_N); more is not Asterisk
MAX_ENV_BYTES = 64 * 1024
EMPTY = RouteDecision(reason=Reason.not_routed)


class _PeerGone(Exception):
    """The other side closed or sent something that is not the AGI protocol."""


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
    for line in lines:
        pair = parse_env_line(line)
        if pair is not None:
            env[pair[0]] = pair[1]
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
        backlog: int = 1024,
        max_connections: int = 4096,
    ) -> None:
        self._route = route
        self._host = host
        self._port = port
        self._read_timeout = read_timeout
        self._route_timeout = route_timeout
        self._backlog = backlog
        self._max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.served = 0

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, backlog=self._backlog, limit=MAX_ENV_BYTES
        )
        logger.info("FastAGI listening on %s:%s", self._host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def __aenter__(self) -> AgiServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self._handlers) >= self._max_connections:
            logger.warning("FastAGI: %d connections open, refusing one", len(self._handlers))
            writer.transport.abort()
            return
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(_Lines(reader), writer)
        except (_PeerGone, ConnectionError, TimeoutError) as exc:
            logger.debug("FastAGI connection ended early: %r", exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("FastAGI request failed")
        finally:
            self._handlers.discard(task)
            writer.close()  # no wait_closed: nothing more is read, and it costs a loop turn

    async def _serve(self, lines: _Lines, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(self._read_timeout):
            env = parse_env(await lines.block())
        script = script_of(env)
        if script == ROUTE_SCRIPT:
            decision = await self._decide(env)
        else:
            # Not ours to answer; an empty target keeps a misconfigured dialplan on its fallback.
            logger.warning(
                "FastAGI: unknown script %r (from %s), answering no target",
                script,
                env.get("agi_channel", "?"),
            )
            decision = EMPTY
        async with asyncio.timeout(self._read_timeout):
            await self._commands(lines, writer, commands_for(decision))
        self.served += 1

    async def _decide(self, env: Mapping[str, str]) -> RouteDecision:
        caller = env.get("agi_callerid", "")
        did = env.get("agi_extension") or env.get("agi_dnid", "")
        try:
            async with asyncio.timeout(self._route_timeout):
                return await self._route(caller, did, env)
        except Exception:
            logger.exception("routing %s failed: answering no target", caller)
            return RouteDecision(reason=Reason.unavailable)

    async def _commands(
        self, lines: _Lines, writer: asyncio.StreamWriter, commands: list[str]
    ) -> None:
        """Send the commands in one write, then read one reply per command.

        Asterisk reads and answers AGI commands one line at a time from the socket, so sending
        them together (pipelining) is the same conversation with one round trip instead of one
        per variable: under a burst of calls that is most of the protocol's cost.
        """
        # No drain(): a few short lines cannot grow the buffer.
        writer.write("".join(f"{c}\n" for c in commands).encode())
        for command in commands:
            while True:
                line = await lines.line()
                if line == "HANGUP":  # the channel hung up: the remaining replies are moot
                    return
                code, final = reply_code(line)
                if code is None or not final:
                    continue  # a usage text line, or noise before the reply
                if code != 200:
                    logger.warning("FastAGI: %r answered %r", command, line)
                break


def _block_end(buf: bytearray) -> int:
    """The offset just past the blank line that ends the environment, or -1 if not there yet."""
    if buf.startswith(b"\n"):
        return 1
    if buf.startswith(b"\r\n"):
        return 2
    ends = [i + n for i, n in ((buf.find(b"\n\n"), 2), (buf.find(b"\n\r\n"), 3)) if i >= 0]
    return min(ends) if ends else -1


class _Lines:
    """Lines from a stream, read in chunks: the whole environment usually arrives in one, and
    parsing it at once costs a fraction of ~25 readline() awaits."""

    __slots__ = ("_buf", "_reader")

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._buf = bytearray()

    async def _fill(self) -> None:
        chunk = await self._reader.read(MAX_ENV_BYTES)
        if not chunk:
            raise _PeerGone("connection closed")
        self._buf += chunk

    async def block(self) -> list[str]:
        """The lines up to the first blank one."""
        while (end := _block_end(self._buf)) < 0:
            if len(self._buf) > MAX_ENV_BYTES or self._buf.count(b"\n") > MAX_ENV_LINES:
                raise _PeerGone("no end of the AGI environment")
            await self._fill()
        block = self._buf[:end].decode("utf-8", "replace").splitlines()
        del self._buf[:end]
        if len(block) > MAX_ENV_LINES or any(len(line) > MAX_LINE for line in block):
            raise _PeerGone("not an AGI environment")
        return block

    async def line(self) -> str:
        while (end := self._buf.find(b"\n")) < 0:
            if len(self._buf) > MAX_LINE:
                raise _PeerGone("line too long")
            await self._fill()
        line = self._buf[:end].decode("utf-8", "replace").rstrip("\r")
        del self._buf[: end + 1]
        return line
