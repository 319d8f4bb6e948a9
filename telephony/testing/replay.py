"""An AMI replay server: a real asyncio TCP server speaking enough AMI to stand in for Asterisk.

It plays ``.ami`` recordings (the byte stream one AMI client received from a real Asterisk) to
every logged-in client, paced by the events' ``Timestamp`` headers, and answers the actions our
service sends (Login, Logoff, Ping, CoreShowChannels, Originate, Events, Command for the two CLI
commands the self-check runs). Used by the tests and by the ``demo`` command.

Playback is one cursor shared by all clients. While no client is logged in, playback waits, so a
client that loses its connection (e.g. ``cut_after``) and logs in again resumes exactly where it
stopped: nothing lost, nothing sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from telephony.ami_wire import (
    EOL,
    AmiAction,
    AmiEvent,
    AmiFramer,
    parse_action,
    parse_message,
    serialize,
)

logger = logging.getLogger(__name__)

Headers = list[tuple[str, str]]

BANNER_VERSION = "11.0.0"
# Channel names carry a per-technology hex sequence: Local/101@agent-phones-0000001a;1
_CHANNEL_SEQ = re.compile(r"\b(?P<tech>[A-Za-z0-9]+)/(?P<rest>[^\s,;|()]*?)-(?P<seq>[0-9a-f]{8})\b")
_UNIQUEID = re.compile(r"^(?P<epoch>\d+)\.(?P<seq>\d+)$")
_CHANNEL_FIELDS = (
    "Channel",
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
    "Uniqueid",
    "Linkedid",
)
ALL_CLASSES = (
    "system,call,log,verbose,command,agent,user,config,dtmf,reporting,cdr,dialplan,originate,"
    "agi,cc,aoc,test,security,message"
)


def load_recording(path: str | Path) -> list[Headers]:
    """The events of a recording, as ordered header lists.

    Skips the banner and responses (the recorder's own Login) and the session's ``FullyBooted``
    (the server sends its own at each login, as Asterisk does).
    """
    framer = AmiFramer(parse_message)
    events: list[Headers] = []
    for message in framer.feed(Path(path).read_bytes() + b"\r\n\r\n"):
        if not isinstance(message, AmiEvent):
            continue
        if message.name == "FullyBooted" and "Timestamp" not in message:
            continue
        events.append(list(message.headers))
    return events


def _get(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value
    return None


@dataclass(eq=False)
class _Client:
    writer: asyncio.StreamWriter
    logged_in: bool = False
    events: bool = True
    frozen: bool = False
    closing: bool = False


@dataclass
class _Pass:
    """Per-pass renumbering state: one pass of one recording makes one consistent set of calls."""

    ts_offset: float = 0.0
    uids: dict[str, str] = field(default_factory=dict)
    seqs: dict[tuple[str, str], str] = field(default_factory=dict)
    bridges: dict[str, str] = field(default_factory=dict)


class ReplayServer:
    """A stand-in Asterisk for tests and demos (see module docstring).

    Test hooks: ``actions_received``/``originates`` (every action seen), ``connections``/``logins``
    counters, ``cut_after(n)``, ``inject(data)``/``inject_after(n, data)``, ``freeze_clients()``
    (a half-open link), ``answer_pings``, ``wait_logins(n)``, ``wait_played()``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "crm",
        secret: str = "crmsecret",
        *,
        read_perm: str = "all",
        timestamp_events: bool = True,
        originate_delay: float = 0.05,
        originate_response: str = "Success",
    ) -> None:
        self.host = host
        self._port = port
        self.username = username
        self.secret = secret
        self.read_perm = {p.strip() for p in read_perm.split(",") if p.strip()}
        self.timestamp_events = timestamp_events
        self.originate_delay = originate_delay
        self.originate_response = originate_response
        self.answer_pings = True
        self.actions_received: list[AmiAction] = []
        self.connections = 0
        self.logins = 0
        self.events_sent = 0
        self.live_channels: dict[str, dict[str, str]] = {}
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[_Client] = set()
        self._has_clients = asyncio.Event()
        self._login_changed = asyncio.Condition()
        self._write_lock = asyncio.Lock()
        self._player: asyncio.Task[None] | None = None
        self._last_pass: _Pass | None = None  # for `resume`
        self._cut_after: int | None = None
        self._inject_at: dict[int, list[bytes]] = {}
        self._uid_counter = itertools.count(1)
        self._seq_counters: dict[str, itertools.count[int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._started_at = time.time()
        self._snapshot_asked = asyncio.Event()  # set when a client asks CoreShowChannels
        # Called with each event as it goes out (after renumbering): the demo plays Asterisk's
        # FastAGI side from it. Must not block; an exception is logged and the replay goes on.
        self.on_event: Callable[[dict[str, str]], None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        logger.info("replay: AMI on %s:%d", self.host, self._port)

    @property
    def port(self) -> int:
        return self._port

    async def close(self) -> None:
        if self._player is not None:
            self._player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._player
        for task in list(self._tasks):
            task.cancel()
        for client in list(self._clients):
            self._drop(client, abort=True)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    # -- playback ----------------------------------------------------------------------------

    async def play(
        self,
        paths: Sequence[str | Path] | str | Path,
        speed: float = 1.0,
        loop: bool = False,
        shift_to_now: bool = True,
        renumber: bool = True,
        strip_timestamps: bool = False,
        gap: float = 1.0,
        resume: bool = False,
    ) -> None:
        """Start playing recordings in the background (replacing any current playback).

        ``speed``: 1 = real time, 10 = ten times faster, 0 or inf = as fast as possible.
        ``shift_to_now``: Timestamps (and the epoch part of Uniqueids) are moved so each pass
        starts now; differences between them are kept as recorded, whatever the speed.
        ``renumber``: fresh Uniqueid/Linkedid (every ``*Uniqueid``/``*Linkedid`` header, kept
        consistent), BridgeUniqueid and channel sequence numbers for each pass, so a looped replay
        makes new calls. ``gap``: recorded seconds of silence between two recordings.
        ``resume``: the first recording goes on the last pass (its time shift and new ids), as
        the second half of a recording split in two does.
        """
        if isinstance(paths, (str, Path)):
            paths = [paths]
        recordings = [load_recording(p) for p in paths]
        if self._player is not None:
            self._player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._player
        self._player = asyncio.create_task(
            self._play(
                recordings, speed, loop, shift_to_now, renumber, strip_timestamps, gap, resume
            ),
            name="ami-replay",
        )

    async def play_alongside(self, events: list[Headers], speed: float = 1.0) -> None:
        """Play one recording's events now, beside the current playback, with fresh ids and
        shifted to now (the demo's click-to-call, a call placed while the loop goes on)."""
        await self._play([events], speed, False, True, True, False, 0.0, False)

    async def wait_played(self) -> None:
        """Wait until the current playback has played everything (never, if looping)."""
        if self._player is not None:
            await asyncio.shield(self._player)

    async def _play(
        self,
        recordings: list[list[Headers]],
        speed: float,
        loop: bool,
        shift_to_now: bool,
        renumber: bool,
        strip_timestamps: bool,
        gap: float,
        resume: bool,
    ) -> None:
        fast = speed <= 0 or math.isinf(speed)
        aloop = asyncio.get_running_loop()
        if not any(recordings):
            return  # nothing to play: looping would spin
        while True:
            for index, events in enumerate(recordings):
                if index and not fast and gap > 0:
                    await asyncio.sleep(gap / speed)
                first_ts = next((t for e in events if (t := _timestamp(e)) is not None), None)
                if resume and not index and self._last_pass is not None:
                    state = self._last_pass
                else:
                    state = _Pass()
                    if shift_to_now and first_ts is not None:
                        state.ts_offset = time.time() - first_ts
                self._last_pass = state
                anchor: tuple[float, float] | None = None
                snapshot: list[Headers] = []
                for event in events:
                    ts = _timestamp(event)
                    if ts is not None and not fast:
                        if anchor is None:
                            anchor = (aloop.time(), ts)
                        delay = anchor[0] + (ts - anchor[1]) / speed - aloop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    elif fast:
                        await asyncio.sleep(0)  # let clients (maybe on this loop) run
                    if not self._has_clients.is_set():
                        await self._has_clients.wait()
                        if ts is not None:
                            anchor = (aloop.time(), ts)  # resume at the pace, not in a burst
                    out = self._transform(event, state, shift_to_now, renumber, strip_timestamps)
                    if _is_snapshot_reply(out):
                        if self._take_snapshot(out, snapshot):
                            # as on the recording, nothing more until the client has asked
                            await self._snapshot_asked.wait()
                            if ts is not None:
                                anchor = (aloop.time(), ts)
                        continue
                    await self._broadcast_event(out)
            if not loop:
                return

    def _transform(
        self, event: Headers, state: _Pass, shift: bool, renumber: bool, strip: bool
    ) -> Headers:
        out: Headers = []
        for name, value in event:
            if name == "Timestamp":
                if strip or not self.timestamp_events:
                    continue
                if shift:
                    value = f"{float(value) + state.ts_offset:.6f}"
            elif renumber:
                value = self._renumber(name, value, state, shift)
            out.append((name, value))
        return out

    def _renumber(self, name: str, value: str, state: _Pass, shift: bool) -> str:
        if name.endswith("BridgeUniqueid") or name == "BridgeId":
            if value:
                value = state.bridges.setdefault(value, str(uuid.uuid4()))
            return value
        if name.endswith(("Uniqueid", "Linkedid")):
            match = _UNIQUEID.match(value)
            if match:
                if value not in state.uids:
                    epoch = int(match["epoch"]) + (int(state.ts_offset) if shift else 0)
                    state.uids[value] = f"{epoch}.{next(self._uid_counter)}"
                return state.uids[value]
            return value
        if "/" in value and "-" in value:
            return _CHANNEL_SEQ.sub(lambda m: self._new_channel(m, state), value)
        return value

    def _new_channel(self, match: re.Match[str], state: _Pass) -> str:
        tech = match["tech"]
        key = (tech, match["seq"])
        if key not in state.seqs:
            counter = self._seq_counters.setdefault(tech, itertools.count(0))
            state.seqs[key] = f"{next(counter):08x}"
        return f"{tech}/{match['rest']}-{state.seqs[key]}"

    async def _broadcast_event(self, event: Headers) -> None:
        data = serialize(event)
        classes = {c for c in (_get(event, "Privilege") or "").split(",") if c and c != "all"}
        async with self._write_lock:
            targets = [c for c in self._receivers() if self._may_read(classes)]
            for client in targets:
                client.writer.write(data)
            self.events_sent += 1
            self._track_channel(event)
            if self.on_event is not None:
                try:
                    self.on_event(AmiEvent(event))
                except Exception:
                    logger.exception("replay: on_event failed")
            for raw in self._inject_at.pop(self.events_sent, []):
                for client in self._receivers():
                    client.writer.write(raw)
            if self._cut_after is not None:
                self._cut_after -= 1
                if self._cut_after <= 0:
                    self._cut_after = None
                    for client in list(self._receivers()):
                        self._drop(client, abort=False)
            await self._drain(targets)

    def _take_snapshot(self, event: Headers, snapshot: list[Headers]) -> bool:
        """A recording made by a client that connected mid-call holds the CoreShowChannels
        answer it got: that is what Asterisk had up at that point. Once complete it becomes
        the channels this server reports, and the clients are made to reconnect, so that they
        ask for it themselves: the service connects here."""
        if _get(event, "Event") == "CoreShowChannel":
            snapshot.append(event)
            return False
        now = time.time()
        self.live_channels = {}
        for item in snapshot:
            fields = AmiEvent(item)
            channel = {f: fields.get(f, "") for f in _CHANNEL_FIELDS}
            for f in ("Application", "ApplicationData", "BridgeId"):
                channel[f] = fields.get(f, "")
            channel["_created"] = str(now - _duration(fields.get("Duration", "")))
            self.live_channels[channel["Channel"]] = channel
        snapshot.clear()
        self._snapshot_asked.clear()
        self.drop_clients()
        return True

    def _may_read(self, classes: set[str]) -> bool:
        return not classes or "all" in self.read_perm or bool(classes & self.read_perm)

    def _track_channel(self, event: Headers) -> None:
        headers = AmiEvent(event)
        name, channel = headers.get("Event"), headers.get("Channel")
        if not channel:
            return
        if name == "Newchannel":
            created = {f: headers.get(f, "") for f in _CHANNEL_FIELDS}
            created |= {"Application": "", "ApplicationData": "", "BridgeId": ""}
            created["_created"] = str(time.time())
            self.live_channels[channel] = created
            return
        if channel not in self.live_channels:
            return
        snapshot = self.live_channels[channel]
        if name == "Hangup":
            del self.live_channels[channel]
            return
        for f in _CHANNEL_FIELDS:
            if f in headers:
                snapshot[f] = headers[f]
        if name == "Newexten":
            snapshot["Application"] = headers.get("Application", "")
            snapshot["ApplicationData"] = headers.get("AppData", "")
        elif name == "BridgeEnter":
            snapshot["BridgeId"] = headers.get("BridgeUniqueid", "")
        elif name == "BridgeLeave":
            snapshot["BridgeId"] = ""

    # -- test hooks ----------------------------------------------------------------------------

    def cut_after(self, n: int) -> None:
        """Close every client connection right after the next ``n`` events have been sent."""
        self._cut_after = n

    def inject_after(self, n: int, data: bytes) -> None:
        """Write raw ``data`` to the clients right after the ``n``-th event ever sent."""
        self._inject_at.setdefault(n, []).append(data)

    async def inject(
        self, data: bytes, *, split_at: Sequence[int] = (), pause: float = 0.02
    ) -> None:
        """Write raw bytes to every logged-in client now; ``split_at`` offsets cut them into
        separate TCP writes with a pause between (to split a message across reads)."""
        bounds = [0, *sorted(split_at), len(data)]
        async with self._write_lock:
            for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
                if i:
                    await asyncio.sleep(pause)
                targets = list(self._receivers())
                for client in targets:
                    client.writer.write(data[lo:hi])
                await self._drain(targets)

    def drop_clients(self) -> None:
        """Close every client connection now (what a restarting Asterisk does)."""
        for client in list(self._clients):
            self._drop(client, abort=False)

    def freeze_clients(self) -> None:
        """Simulate a half-open link: the current clients' connections stay open but nothing is
        answered or sent to them any more. New connections are served normally."""
        for client in self._clients:
            client.frozen = True
        self._update_has_clients()

    async def wait_logins(self, n: int) -> None:
        """Wait until ``n`` successful logins have happened since start."""
        async with self._login_changed:
            await self._login_changed.wait_for(lambda: self.logins >= n)

    @property
    def originates(self) -> list[AmiAction]:
        return [a for a in self.actions_received if a.name.lower() == "originate"]

    # -- serving -------------------------------------------------------------------------------

    def _receivers(self) -> Iterable[_Client]:
        return [
            c for c in self._clients if c.logged_in and c.events and not c.frozen and not c.closing
        ]

    def _update_has_clients(self) -> None:
        if any(c.logged_in and not c.frozen and not c.closing for c in self._clients):
            self._has_clients.set()
        else:
            self._has_clients.clear()

    def _drop(self, client: _Client, *, abort: bool) -> None:
        client.closing = True
        self._update_has_clients()
        if abort:
            client.writer.transport.abort()
        else:
            client.writer.close()

    async def _drain(self, clients: Iterable[_Client]) -> None:
        for client in clients:
            try:
                await client.writer.drain()
            except (ConnectionError, RuntimeError):
                self._drop(client, abort=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _Client(writer)
        self.connections += 1
        self._clients.add(client)
        writer.write(f"Asterisk Call Manager/{BANNER_VERSION}{EOL}".encode())
        framer = AmiFramer(parse_action, banner=False)
        try:
            while not client.closing:
                data = await reader.read(65536)
                if not data:
                    break
                for action in framer.feed(data):
                    assert isinstance(action, AmiAction)  # no banner from a client
                    self.actions_received.append(action)
                    if not client.frozen and not client.closing:
                        await self._handle_action(client, action)
        except ConnectionError:
            pass
        finally:
            self._clients.discard(client)
            client.closing = True
            self._update_has_clients()
            writer.close()

    async def _reply(self, client: _Client, headers: Headers) -> None:
        async with self._write_lock:
            if not client.closing:
                client.writer.write(serialize(headers))
                await self._drain([client])

    async def _handle_action(self, client: _Client, received: AmiAction) -> None:
        # Asterisk reads header names case-insensitively.
        action = {k.lower(): v for k, v in received.items()}
        name = action.get("action", "").lower()
        aid: Headers = [("ActionID", action["actionid"])] if "actionid" in action else []
        if name == "login":
            await self._login(client, action, aid)
        elif name == "logoff":
            await self._reply(
                client, [("Response", "Goodbye"), *aid, ("Message", "Thanks for all the fish.")]
            )
            self._drop(client, abort=False)
        elif not client.logged_in:
            await self._reply(
                client, [("Response", "Error"), *aid, ("Message", "Authentication Required")]
            )
        elif name == "ping":
            if self.answer_pings:
                await self._reply(
                    client,
                    [("Response", "Success"), *aid, ("Ping", "Pong"), ("Timestamp", _now())],
                )
        elif name == "coreshowchannels":
            await self._core_show_channels(client, aid)
        elif name == "originate":
            await self._originate(client, action, aid)
        elif name == "events":
            on = action.get("eventmask", "on").lower() != "off"
            client.events = on
            await self._reply(
                client, [("Response", "Success"), *aid, ("Events", "On" if on else "Off")]
            )
        elif name == "command":
            await self._command(client, action.get("command", ""), aid)
        else:
            await self._reply(
                client, [("Response", "Error"), *aid, ("Message", "Invalid/unknown command")]
            )

    async def _login(self, client: _Client, action: dict[str, str], aid: Headers) -> None:
        if action.get("username") != self.username or action.get("secret") != self.secret:
            # As Asterisk does: an error, then the connection is closed.
            await self._reply(
                client, [("Response", "Error"), *aid, ("Message", "Authentication failed")]
            )
            self._drop(client, abort=False)
            return
        uptime = str(int(time.time() - self._started_at))
        await self._reply(
            client, [("Response", "Success"), *aid, ("Message", "Authentication accepted")]
        )
        await self._reply(
            client,
            [
                ("Event", "FullyBooted"),
                ("Privilege", "system,all"),
                ("Uptime", uptime),
                ("LastReload", uptime),
                ("Status", "Fully Booted"),
            ],
        )
        client.logged_in = True
        client.events = action.get("events", "on").lower() != "off"
        self.logins += 1
        self._update_has_clients()
        async with self._login_changed:
            self._login_changed.notify_all()

    async def _core_show_channels(self, client: _Client, aid: Headers) -> None:
        replies: list[Headers] = [
            [
                ("Response", "Success"),
                *aid,
                ("EventList", "start"),
                ("Message", "Channels will follow"),
            ]
        ]
        self._snapshot_asked.set()
        now = time.time()
        for snapshot in self.live_channels.values():
            seconds = int(now - float(snapshot["_created"]))
            duration = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
            fields = [(k, v) for k, v in snapshot.items() if not k.startswith("_")]
            replies.append([("Event", "CoreShowChannel"), *aid, *fields, ("Duration", duration)])
        replies.append(
            [
                ("Event", "CoreShowChannelsComplete"),
                *aid,
                ("EventList", "Complete"),
                ("ListItems", str(len(replies) - 1)),
            ]
        )
        async with self._write_lock:
            client.writer.write(b"".join(serialize(r) for r in replies))
            await self._drain([client])

    async def _originate(self, client: _Client, action: dict[str, str], aid: Headers) -> None:
        is_async = action.get("async", "false").lower() in ("true", "yes", "1")
        ok = self.originate_response == "Success"
        if not is_async:
            # Asterisk answers a synchronous Originate only once the outcome is known.
            await asyncio.sleep(self.originate_delay)
            message = "Originate successfully queued" if ok else "Originate failed"
            await self._reply(
                client, [("Response", "Success" if ok else "Error"), *aid, ("Message", message)]
            )
            return
        await self._reply(
            client, [("Response", "Success"), *aid, ("Message", "Originate successfully queued")]
        )
        result: Headers = [
            ("Event", "OriginateResponse"),
            ("Privilege", "call,all"),
            ("Timestamp", _now()),
            *aid,
            ("Response", self.originate_response),
            ("Channel", action.get("channel", "")),
            ("Context", action.get("context", "")),
            ("Exten", action.get("exten", "")),
            ("Reason", "4" if ok else "0"),
            ("Uniqueid", f"{int(time.time())}.{next(self._uid_counter)}" if ok else "<null>"),
            ("CallerIDNum", "<unknown>"),
            ("CallerIDName", "<unknown>"),
        ]
        task = asyncio.create_task(self._later(self.originate_delay, result))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _later(self, delay: float, event: Headers) -> None:
        await asyncio.sleep(delay)
        data = serialize(event)
        async with self._write_lock:
            targets = list(self._receivers())
            for client in targets:
                client.writer.write(data)
            await self._drain(targets)

    async def _command(self, client: _Client, command: str, aid: Headers) -> None:
        words = command.split()
        output: list[str]
        if words[:3] == ["manager", "show", "user"] and words[3:] == [self.username]:
            perms = ALL_CLASSES if "all" in self.read_perm else ",".join(sorted(self.read_perm))
            output = [
                "",
                f"          username: {self.username}",
                "            secret: <Set>",
                "               ACL: yes",
                f"         read perm: {perms}",
                f"        write perm: {ALL_CLASSES}",
                "   displayconnects: yes",
                "allowmultiplelogin: yes",
                "         Variables: ",
            ]
        elif words[:3] == ["manager", "show", "settings"]:
            output = [
                "",
                "Global Settings:",
                "----------------",
                "  Manager (AMI):                   Yes",
                "  Web Manager (AMI/HTTP):          No",
                f"  TCP Bindaddress:                 {self.host}:{self._port}",
                "  Display connects:                Yes",
                f"  Timestamp events:                {'Yes' if self.timestamp_events else 'No'}",
                "  Debug:                           No",
            ]
        else:
            no_such = f"No such command '{command}' (type 'core show help {command}' for help)"
            await self._reply(
                client,
                [
                    ("Response", "Error"),
                    *aid,
                    ("Message", "Command output follows"),
                    ("Output", no_such),
                ],
            )
            return
        await self._reply(
            client,
            [
                ("Response", "Success"),
                *aid,
                ("Message", "Command output follows"),
                *(("Output", line) for line in output),
            ],
        )


def _is_snapshot_reply(event: Headers) -> bool:
    # Replies to the recording client's own CoreShowChannels carry its ActionID; Asterisk
    # broadcasts no such events.
    name = _get(event, "Event")
    return name in ("CoreShowChannel", "CoreShowChannelsComplete") and bool(_get(event, "ActionID"))


def _duration(value: str) -> float:
    hours, _, rest = value.partition(":")
    minutes, _, seconds = rest.partition(":")
    try:
        return int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    except ValueError:
        return 0.0


def _timestamp(event: Headers) -> float | None:
    value = _get(event, "Timestamp")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _now() -> str:
    return f"{time.time():.6f}"
