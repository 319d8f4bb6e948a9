"""Screen-pop latency end to end (issue 5): AMI DialBegin reaching the listener -> the operator's
socket, with 500 operator sockets connected and 20 new calls per second.

    .venv/bin/python bench/pop_latency_bench.py [--operators 500] [--rate 20] [--seconds 15]
                                                [--callers 200] [--time-scale 1] [--warmup 1]

Three processes, as in production (PostgreSQL is a fourth, embedded):

  pbx       a tiny AMI server standing in for Asterisk. Each call is the recording
            inbound_answered.ami with the agent's extension 101 rewritten to the call's operator
            (channel names, Exten/DestExten/Extension, dial strings, queue member names, the
            AGI's CRM_TARGET), fresh Uniqueid/Linkedid/BridgeUniqueid/channel sequence numbers,
            the caller's number taken from a pool of `--callers` numbers (so some callers are
            new and some already have a card with history), Timestamps moved to the send time.
            Calls start every 1/rate s; each call's events keep their RECORDED RELATIVE TIMING
            (real time at --time-scale 1: the agent's phone is rung ~4 ms after the call enters,
            answered ~1 s later, hung up ~7.5 s after that), so ~170 calls overlap. Events of
            all calls are merged on one timeline; whatever is due at the same moment leaves in
            one write.
  service   (this process) the real thing: uvicorn + web.app.create_app with a Container, the
            EventHub of its lifespan, AmiListener -> CallTracker -> CallPipeline -> PostgreSQL
            -> hub.publish_shown_first (this instance's sockets at once, then event_log +
            NOTIFY + COMMIT -> LISTEN -> fan-out to other instances) -> /ws sockets.
            The pipeline is the service's own (web/parts/call_tracking.py: call_pipeline)
            and the listener is wired to it here (without the leader election, which is not
            on the hot path), so that a thin wrapper around pipeline.on_event can note the
            listener's arrival time of each agent DialBegin, and the pipeline's publisher notes
            when each call.ringing is published.
  browsers  every operator socket (`/ws?token=...`, one user per extension 1000..1499),
            answering pings, stamping each call.ringing frame with time.time() on receipt.

Two paths, one after the other, each `--seconds` of calls at `--rate` (after a warm-up that is
not counted), waiting for every call to end between them:

  db     the service's path: tracker facts -> the pipeline's pop lane (who is calling: the card
         by phone, a read; then the screen-pop, a read: a new caller's says `new_caller`) ->
         hub.publish_shown_first (as web/compose.py wires the pop lane), while the card lane
         opens new callers' cards and deals (each
         then announced as call.card_opened to the agents whose pop went out without it) and
         the live and log lanes write agent states, calls in progress and the log apart
  local  the database step skipped: the same listener and tracker, AgentRinging facts turned
         into a call.ringing of the same shape (the same message class and view builder, the
         card a real one captured in the db run) and handed to hub.publish_local (fan-out only)

Printed per path: p50/p99/max of AMI arrival -> publish, publish -> socket and end to end, and
end to end per 5 s of the run; then where the db path's time goes (the pipeline's writer lanes:
batches, busy share, cost per fact type) and the service's GC pauses, then MET / NOT MET for
issue 5's target (p99 end to end <= 50 ms on the db path, every pop delivered) and issue 13's
(db p99 <= 2x the local path's in the same run, every pop delivered, every new caller's pop
filled in by its call.card_opened, none of either twice in event_log).
Times are epoch seconds (time.time()) in every process: one clock for the whole machine. On a
2-core machine other work moves the figures a lot: run it more than once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ami_reply

SECRET = "bench-secret-key-that-is-long-enough-for-hs256"
RECORDING = Path(__file__).resolve().parents[1] / "asterisk" / "recordings" / "inbound_answered.ami"
RECORDED_AGENT = "101"
RECORDED_CALLER = "+79161234567"
FIRST_EXTENSION = 1000
TARGET_P99_MS = 50.0

# the recorded agent's extension as a word of its own (not inside timestamps, ids or numbers)
_AGENT = re.compile(r"(?<![\w.+])101(?![\w.])")
# per-technology channel sequence numbers: Local/101@agent-phones-00000001;1
_CHANNEL_SEQ = re.compile(r"(@[\w-]+?)-([0-9a-f]{8})\b")
_UNIQUEID = re.compile(r"^(\d+)\.(\d+)$")
# the DialBegin that rings an agent: its DestChannel is the agent's phone (Local/1234@agent-...)
_AGENT_DEST = re.compile(r"^(?:PJSIP|SIP|IAX2|Local)/\d{2,6}@agent-phones-")


def _run(coro: Any) -> Any:
    try:  # the service runs on uvloop when installed (uvicorn picks it up): measure on it too
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _stdin_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


# ---- the PBX stand-in (its own process) -----------------------------------------------------


def _call_events(
    recording: list[list[tuple[str, str]]], k: int, ext: str, caller: str, start: float
) -> list[tuple[float, bytes]]:
    """Call number `k` of the run: (send time, AMI bytes) of each event of the recording."""
    from telephony.testing.replay import serialize

    first = next(float(v) for e in recording for n, v in e if n == "Timestamp")
    epoch = int(start)
    out: list[tuple[float, bytes]] = []

    def channel(m: re.Match[str]) -> str:
        return f"{m.group(1)}-{k * 2 + int(m.group(2), 16):08x}"

    for event in recording:
        headers: list[tuple[str, str]] = []
        at = start
        for name, value in event:
            if name == "Timestamp":
                at = start + float(value) - first
                value = f"{at:.6f}"
            elif name.endswith("BridgeUniqueid"):
                value = f"{value[:-12]}{k:012x}" if value else value
            elif name.endswith(("Uniqueid", "Linkedid")) and (m := _UNIQUEID.match(value)):
                value = f"{epoch}.{k * 4 + int(m.group(2))}"
            else:
                value = _CHANNEL_SEQ.sub(channel, value)
                value = _AGENT.sub(ext, value).replace(RECORDED_CALLER, caller)
            headers.append((name, value))
        out.append((at, serialize(headers)))
    return out


def _load_calls_recording() -> list[list[tuple[str, str]]]:
    from telephony.testing.replay import load_recording

    events = load_recording(RECORDING)
    # from the call's first channel on: the recorder's own logins are not part of a call
    first = next(i for i, e in enumerate(events) if e[0] == ("Event", "Newchannel"))
    return events[first:]


class PacedAmiServer:
    """Just enough AMI (banner, Login, CoreShowChannels, Ping) plus a paced event stream."""

    def __init__(self) -> None:
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.clients: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        try:
            while True:
                text = (await reader.readuntil(b"\r\n\r\n")).decode()
                writer.write(ami_reply(text))
                if "Action: Login" in text:
                    self.clients.append(writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if writer in self.clients:
                self.clients.remove(writer)

    async def play(self, schedule: list[tuple[float, bytes]]) -> tuple[int, float]:
        """Send each event at its epoch time; returns (events sent, worst lateness in ms)."""
        loop = asyncio.get_running_loop()
        # loop.time() paces (monotonic); the schedule is in epoch seconds
        offset = loop.time() - time.time()
        i, n, worst = 0, len(schedule), 0.0
        while i < n:
            now = loop.time()
            due = schedule[i][0] + offset
            if due > now:
                await asyncio.sleep(due - now)
                continue
            worst = max(worst, now - due)
            chunk = []
            while i < n and schedule[i][0] + offset <= now:
                chunk.append(schedule[i][1])
                i += 1
            data = b"".join(chunk)
            for writer in self.clients:
                writer.write(data)
            for writer in self.clients:
                await writer.drain()
        return n, worst * 1000


async def serve_plays(plan: Callable[[list[str]], list[tuple[float, bytes]]]) -> PacedAmiServer:
    """The PBX stand-in's loop (this bench's and board_latency_bench's): a paced AMI server
    (PORT <port> on stdout), then per line on stdin the schedule `plan` builds from its words,
    played (PLAYED <events> <worst lateness ms>), until an empty line. Returns the server."""
    server = PacedAmiServer()
    await server.start()
    print("PORT", server.port, flush=True)
    while words := (await _stdin_line()).split():
        sent, worst = await server.play(plan(words))
        print("PLAYED", sent, f"{worst:.3f}", flush=True)
    return server


async def pbx_main(operators: int, callers: int) -> None:
    recording = _load_calls_recording()

    def plan(line: list[str]) -> list[tuple[float, bytes]]:
        # PLAY <first call number> <calls> <calls per second> <time scale>
        first, calls, rate, scale = int(line[1]), int(line[2]), float(line[3]), float(line[4])
        # The times are fixed before the schedule is built, so building must end before the
        # first call is due, or its first calls go out late in one burst (a fixed 2 ms a call
        # did not cover the ~5 ms a call takes: the first 0.6 s of calls came at once). Time a
        # few calls' build, on this machine as it is now, and leave twice that.
        probe = range(first, first + min(calls, 10))
        t = time.perf_counter()
        for k in probe:
            _call_events(recording, k, str(FIRST_EXTENSION), RECORDED_CALLER, 0.0)
        lead = 0.3 + calls * 2 * (time.perf_counter() - t) / max(1, len(probe))
        start = time.time() + lead
        schedule: list[tuple[float, bytes]] = []
        for k in range(first, first + calls):
            ext = str(FIRST_EXTENSION + k % operators)
            caller = f"+7916{k % callers:07d}"
            call_start = start + (k - first) / rate
            for at, data in _call_events(recording, k, ext, caller, call_start):
                schedule.append((call_start + (at - call_start) * scale, data))
        schedule.sort(key=lambda item: item[0])
        return schedule

    await serve_plays(plan)


# ---- the browsers (their own process) --------------------------------------------------------


async def clients_main(port: int, users: list[dict[str, Any]]) -> dict[str, Any]:
    from websockets.asyncio.client import ClientConnection, connect

    pops: list[tuple[str, float, int, str]] = []  # linkedid, received at, frame bytes, channel
    cards: list[tuple[str, float, str]] = []  # call.card_opened: linkedid, received at, channel
    others = [0]
    gate = asyncio.Semaphore(50)
    sockets: list[ClientConnection] = []

    async def read(ws: ClientConnection) -> None:
        async for raw in ws:
            now = time.time()
            msg = json.loads(raw)
            kind = msg.get("type")
            if kind == "ping":
                await ws.send('{"type":"pong"}')
            elif kind == "call.ringing" and str(msg.get("channel", "")).startswith("ext:"):
                pops.append((msg["payload"]["linkedid"], now, len(raw), msg["channel"]))
            elif kind == "call.card_opened" and str(msg.get("channel", "")).startswith("ext:"):
                cards.append((msg["payload"]["linkedid"], now, msg["channel"]))
            else:
                others[0] += 1

    async def open_one(token: str) -> asyncio.Task[None]:
        async with gate:
            ws = await connect(
                f"ws://127.0.0.1:{port}/ws?token={token}", compression=None, open_timeout=60
            )
        sockets.append(ws)
        return asyncio.create_task(read(ws))

    readers = await asyncio.gather(*(open_one(u["token"]) for u in users))
    print("CONNECTED", len(sockets), flush=True)
    await _stdin_line()  # until the service has played everything
    for r in readers:
        r.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    return {"pops": pops, "cards": cards, "other_messages": others[0]}


# ---- the service (this process) ---------------------------------------------------------------


class Probe:
    """Times per Linkedid: agent DialBegin at the listener, call.ringing published."""

    def __init__(self) -> None:
        self.mode = "warmup"
        self.mode_of: dict[str, str] = {}
        self.arrival: dict[str, float] = {}
        self.published: dict[str, float] = {}
        self.committed: dict[str, float] = {}
        self.payload_bytes: dict[str, list[int]] = {}
        self.new_client: dict[str, bool] = {}
        self.new_caller: dict[str, bool] = {}  # the pop went out before the card existed
        self.card: Any = None
        # per hop (the AgentRinging's pop-lane batch started and its apply done; the hub's
        # Fanout handing the call.ringing to this instance's sockets)
        self.pop_started: dict[str, float] = {}
        self.pop_read: dict[str, float] = {}
        self.fanned_out: dict[str, float] = {}

    def note_pop(self, facts: list[Any], started: float, done: float) -> None:
        for fact in facts:
            if type(fact).__name__ == "AgentRinging":
                self.pop_started.setdefault(fact.linkedid, started)
                self.pop_read.setdefault(fact.linkedid, done)

    def note_fanout(self, env: Any, at: float) -> None:
        if env.type == "call.ringing" and env.channel.startswith("ext:"):
            linkedid = json.loads(env.frame)["payload"]["linkedid"]
            self.fanned_out.setdefault(linkedid, at)

    def note_arrival(self, event: dict[str, str], arrival: float) -> None:
        if event.get("Event") != "DialBegin":
            return
        if not _AGENT_DEST.match(event.get("DestChannel", "")):
            return
        linkedid = event.get("Linkedid", "")
        if linkedid and linkedid not in self.arrival:
            self.arrival[linkedid] = arrival
            self.mode_of[linkedid] = self.mode

    def note_published(self, event: Any, started: float, done: float) -> None:
        self.published.setdefault(event.linkedid, started)
        self.committed.setdefault(event.linkedid, done)
        # a caller new to the CRM: the pop says so (`new_caller`, the card follows) or, when the
        # card was committed before the pop's read, carries the card the call opened
        new = event.payload.get("new_client") or event.payload.get("new_caller")
        self.new_client.setdefault(event.linkedid, bool(new))
        self.new_caller.setdefault(event.linkedid, bool(event.payload.get("new_caller")))
        size = len(json.dumps(event.payload, separators=(",", ":"), default=str))
        self.payload_bytes.setdefault(self.mode, []).append(size)


class Router:
    """The listener's on_event: notes the agent DialBegin's arrival, then feeds the pipeline
    of the current run (the real CallPipeline, or the database-free variant)."""

    def __init__(self, probe: Probe, target: Any) -> None:
        self.probe = probe
        self.target = target

    async def on_event(self, event: dict[str, str], arrival: float) -> None:
        self.probe.note_arrival(event, arrival)
        await self.target.on_event(event, arrival)

    async def on_connected(self, channels: list[dict[str, str]]) -> None:
        await self.target.on_connected(channels)


class WriterClock:
    """Where the pipeline's writer lanes spend their time. Bench-only instrumentation: this
    pipeline instance's `_apply_pop`, `_apply_card`, `_apply_live` and `_apply_log` are wrapped;
    the class is untouched. A batch's time is shared out evenly among its facts, by fact type."""

    def __init__(self, pipeline: Any, probe: Probe) -> None:
        self.busy: dict[str, dict[str, float]] = {}
        self.batches: dict[str, dict[str, list[int]]] = {}
        self.longest: dict[str, dict[str, float]] = {}
        self.per_fact: dict[str, dict[str, list[float]]] = {}
        for lane in ("pop", "card", "live", "log"):
            name = f"_apply_{lane}"
            setattr(pipeline, name, self._timed(lane, getattr(pipeline, name), probe))

    def _timed(self, lane: str, apply: Any, probe: Probe) -> Any:
        async def timed(session: Any, facts: list[Any]) -> Any:
            started = time.perf_counter()
            wall = time.time()
            try:
                return await apply(session, facts)
            finally:
                took = time.perf_counter() - started
                if lane == "pop":
                    probe.note_pop(facts, wall, time.time())
                mode = probe.mode
                busy = self.busy.setdefault(mode, {})
                busy[lane] = busy.get(lane, 0.0) + took
                longest = self.longest.setdefault(mode, {})
                longest[lane] = max(longest.get(lane, 0.0), took * 1000)
                self.batches.setdefault(mode, {}).setdefault(lane, []).append(len(facts))
                kinds = self.per_fact.setdefault(mode, {})
                for fact in facts:
                    kind = f"{lane}:{type(fact).__name__.lstrip('_')}"
                    kinds.setdefault(kind, []).append(took * 1000 / len(facts))

        return timed


class GcClock:
    """Garbage-collector pauses of the service process (they stop the whole event loop)."""

    def __init__(self, probe: Probe) -> None:
        self.pauses: dict[str, list[float]] = {}
        self._probe = probe
        self._started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            took = (time.perf_counter() - self._started) * 1000
            self.pauses.setdefault(self._probe.mode, []).append(took)


class LocalPipeline:
    """Tracker facts -> hub.publish_local for AgentRinging: the pop path with no database."""

    def __init__(self, tracker: Any, hub: Any, probe: Probe) -> None:
        self.tracker = tracker
        self.hub = hub
        self.probe = probe

    async def on_event(self, event: dict[str, str], arrival: float) -> None:
        from crm_core.calls.schemas import NO_CONTEXT
        from crm_core.calls.views import call_event, call_view
        from crm_core.events.messages import CallRingingMessage
        from telephony.call_in_progress import call_info
        from telephony.facts import AgentRinging

        for fact in self.tracker.feed(event, arrival):
            if not isinstance(fact, AgentRinging):
                continue
            # built as crm_core.calls.progress.agent_ringing_pop builds it, the card a real one
            view = call_view(fact.linkedid, call_info(fact.call), NO_CONTEXT)
            if self.probe.card is not None:
                message = CallRingingMessage(
                    linkedid=fact.linkedid,
                    extensions=[fact.extension],
                    call=view,
                    card=self.probe.card,
                    new_client=False,
                )
            else:
                message = CallRingingMessage(
                    linkedid=fact.linkedid, extensions=[fact.extension], call=view, unknown=True
                )
            ringing = call_event(message)
            started = time.time()
            self.hub.publish_local([ringing])
            self.probe.note_published(ringing, started, time.time())

    async def on_connected(self, channels: list[dict[str, str]]) -> None:
        for channel in channels:
            self.tracker.feed(channel, time.time())


async def make_users(url: str, operators: int, supervisors: int) -> list[dict[str, Any]]:
    """One bulk insert sharing one password hash (argon2 is slow); a token per user."""
    from bench._common import signed_in_users

    users = await signed_in_users(
        url, operators, supervisors, first_extension=FIRST_EXTENSION, hours=4
    )
    return [{"extension": u["extension"], "token": u["token"]} for u in users]


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data))


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def _expect(proc: asyncio.subprocess.Process, word: str, limit: float) -> list[str]:
    assert proc.stdout is not None
    async with asyncio.timeout(limit):
        while True:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise RuntimeError(f"subprocess ended before printing {word}")
            parts = line.split()
            if parts and parts[0] == word:
                return parts[1:]


def _send(proc: asyncio.subprocess.Process, line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line.encode() + b"\n")


async def main() -> None:
    from bench._common import embedded_database, served
    from crm_core.db import StagedPublisher, TransactionalPublisher
    from crm_core.settings import CoreSettings
    from notifier.settings import NotifierSettings
    from telephony.ami_listener import AmiListener
    from telephony.settings import TelephonySettings
    from telephony.tracker import CallTracker, TrackerConfig
    from web.compose import open_container
    from web.parts.call_tracking import call_pipeline
    from web.settings import Settings, WebSettings

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--operators", type=int, default=500)
    parser.add_argument("--supervisors", type=int, default=0)
    parser.add_argument("--rate", type=float, default=20.0, help="new calls per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="of new calls, per path")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of uncounted calls")
    parser.add_argument("--callers", type=int, default=200, help="distinct caller numbers")
    parser.add_argument("--time-scale", type=float, default=1.0, help="<1 compresses each call")
    parser.add_argument(
        "--in-transaction",
        action="store_true",
        help="the pipeline's events written to event_log in its batch's own transaction "
        "(EventHub.transactional) instead of hub.publish after the COMMIT",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load_before = os.getloadavg()

    url, _pg = embedded_database()  # keep the handle: the server stops when it is collected
    users = await make_users(url, args.operators, args.supervisors)
    work = Path(tempfile.mkdtemp(prefix="pop-bench-"))
    tokens_path, results_path = work / "tokens.json", work / "pops.json"
    _write_json(tokens_path, users)

    pbx = await _spawn("--pbx", str(args.operators), str(args.callers))
    clients: asyncio.subprocess.Process | None = None
    service = contextlib.AsyncExitStack()
    try:
        pbx_port = int((await _expect(pbx, "PORT", 60))[0])
        settings = Settings(
            core=CoreSettings(DATABASE_URL=url),
            telephony=TelephonySettings(
                # a loaded machine may answer a Ping late: the run must not drop its connection
                AMI_ENABLED=False,
                AGI_ENABLED=False,
                AMI_PORT=pbx_port,
                AMI_PING_INTERVAL=120,
            ),  # the bench wires the listener itself, below
            web=WebSettings(SECRET_KEY=SECRET),
            notifier=NotifierSettings(),
        )
        container = await open_container(settings, migrate=False)
        running, port = await service.enter_async_context(
            served(
                container,
                log_level="warning",
                ws_per_message_deflate=False,  # as web/server.py runs it
                backlog=4096,
            )
        )
        hub = running.hub
        assert hub is not None
        async with asyncio.timeout(60):
            await hub.wait_ready()

        clients = await _spawn("--clients", str(port), str(tokens_path), str(results_path))
        connected = int((await _expect(clients, "CONNECTED", 300))[0])
        async with asyncio.timeout(60):
            while hub.subscriber_count() < len(users):  # noqa: ASYNC110
                await asyncio.sleep(0.1)

        # the service's pipeline; the listener wired to it through the probe's router
        probe = Probe()
        fanout = hub._fanout  # bench-only: when this instance hands a pop to its sockets
        fanout_deliver = fanout.deliver

        def deliver(env: Any) -> None:
            if fanout.last_seq is None or env.seq > fanout.last_seq:
                probe.note_fanout(env, time.time())
            fanout_deliver(env)

        fanout.deliver = deliver  # type: ignore[method-assign]
        fanout_show = fanout.show

        def show(messages: Any) -> Any:  # the pop lane's messages, before event_log
            at = time.time()
            for m in messages:
                if m.type == "call.ringing" and m.channel.startswith("ext:"):
                    probe.fanned_out.setdefault(m.payload["linkedid"], at)
            return fanout_show(messages)

        fanout.show = show  # type: ignore[method-assign]

        def note(events: list[Any], started: float, done: float) -> None:
            for event in events:
                if getattr(event, "type", None) == "call.ringing":
                    probe.note_published(event, started, done)
                    if probe.card is None and "card" in event.payload:
                        probe.card = event.payload["card"]

        async def publish(events: list[Any]) -> None:
            started = time.time()
            await hub.publish(events)
            note(events, started, time.time())

        async def publish_pops(events: list[Any]) -> None:
            started = time.time()
            await hub.publish_shown_first(events)
            note(events, started, time.time())

        async def write(session: Any, events: list[Any]) -> None:
            # in the batch's transaction: "done" is before its COMMIT, the NOTIFY leaves at it
            started = time.time()
            await hub.publish_in(session, events)
            note(events, started, time.time())

        s = settings
        # as the service wires it (web/compose.py: hub.staged): the card, live and log lanes
        # stage their messages in their batches' transactions; the pop lane publishes
        staged = hub.staged
        assert isinstance(staged, StagedPublisher)
        publisher: Any = (
            TransactionalPublisher(write, publish)
            if args.in_transaction
            else StagedPublisher(staged.stage, staged.release, publish)
        )
        pipeline = call_pipeline(s, container.sessions, publisher, pop_publish=publish_pops)
        await pipeline.restore()
        writer = WriterClock(pipeline, probe)
        collector = GcClock(probe)
        pipeline.start()
        local = LocalPipeline(CallTracker(TrackerConfig.from_settings(s.telephony)), hub, probe)
        router = Router(probe, pipeline)
        listener = AmiListener(s.telephony, router.on_event, router.on_connected)
        await listener.start()
        async with asyncio.timeout(30):
            await listener.wait_connected()

        next_call = 0
        played: dict[str, tuple[int, float]] = {}
        wall: dict[str, float] = {}
        # db must run first: publish_local numbers continue from the hub's last seq, and the
        # database's lower numbers published after them would be dropped as already seen
        runs = [("warmup", pipeline, args.warmup), ("db", pipeline, args.seconds)]
        runs.append(("local", local, args.seconds))
        for mode, target, seconds in runs:
            calls = round(args.rate * seconds)
            if calls <= 0:
                continue
            probe.mode, router.target = mode, target
            print(f"{mode}: {calls} calls at {args.rate:g}/s ...", flush=True)
            began = time.perf_counter()
            _send(pbx, f"PLAY {next_call} {calls} {args.rate} {args.time_scale}")
            next_call += calls
            sent, worst = (await _expect(pbx, "PLAYED", 600 + seconds * 2))[:2]
            played[mode] = (int(sent), float(worst))
            await pipeline.drain()
            wall[mode] = time.perf_counter() - began
            await asyncio.sleep(1.0)  # the last frames reach the browsers
        stats = dict(pipeline.stats)

        _send(clients, "DONE")
        await _expect(clients, "DONE", 60)
        results = _read_json(results_path)
        await listener.close()
        await pipeline.close()
    finally:
        for proc in (clients, pbx):
            if proc is not None and proc.returncode is None:
                if proc.stdin is not None:
                    proc.stdin.close()
                try:
                    async with asyncio.timeout(10):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
        await service.aclose()

    report(args, probe, results, played, stats, connected, load_before)
    report_writer(writer, wall, collector)
    print(verdict(probe, results, await pops_logged_twice(url)))


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _row(label: str, samples: list[float]) -> str:
    if not samples:
        return f"  {label:<46} n=    0"
    return (
        f"  {label:<46} n={len(samples):>4}  p50={_pct(samples, 0.5):7.1f}  "
        f"p99={_pct(samples, 0.99):7.1f}  max={max(samples):7.1f}  "
        f"mean={statistics.fmean(samples):7.1f}"
    )


def _received(results: dict[str, Any]) -> tuple[dict[str, float], dict[str, int], int]:
    """linkedid -> first receipt time, and frame sizes; duplicates counted."""
    received: dict[str, float] = {}
    sizes: dict[str, int] = {}
    duplicates = 0
    for linkedid, at, size, _channel in results["pops"]:
        if linkedid in received:
            duplicates += 1
            continue
        received[linkedid] = at
        sizes[linkedid] = size
    return received, sizes, duplicates


def _end_to_end(probe: Probe, received: dict[str, float], mode: str) -> list[tuple[float, float]]:
    """(arrival, ms) of every pop of `mode` that arrived, in arrival order."""
    ids = [i for i, m in probe.mode_of.items() if m == mode and i in received]
    return sorted((probe.arrival[i], (received[i] - probe.arrival[i]) * 1000) for i in ids)


def report(
    args: argparse.Namespace,
    probe: Probe,
    results: dict[str, Any],
    played: dict[str, tuple[int, float]],
    stats: dict[str, int],
    connected: int,
    load_before: tuple[float, float, float],
) -> None:
    received, frame_size, duplicates = _received(results)
    print(
        f"\n{connected} sockets ({args.operators} operators, extensions {FIRST_EXTENSION}.."
        f"{FIRST_EXTENSION + args.operators - 1}, +{args.supervisors} supervisors); "
        f"{args.rate:g} new calls/s for {args.seconds:g} s per path; {os.cpu_count()} cores shared "
        f"by PostgreSQL, service, browsers, AMI stand-in; load average before "
        f"{load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}"
    )
    print(
        f"AMI stream: inbound_answered.ami per call, recorded relative timing x{args.time_scale:g} "
        f"(agent rung ~4 ms after the call enters, answer +1 s, hang-up +7.5 s), "
        f"{args.callers} distinct callers"
    )
    print(
        "db path's events: "
        + (
            "written to event_log in the batch's own transaction (--in-transaction)"
            if args.in_transaction
            else "the pop lane's: hub.publish_shown_first after its statements; the other"
            " lanes' staged in their batches, released after the COMMIT"
        )
    )
    for mode, (sent, worst) in played.items():
        print(f"  {mode:<6} {sent:>6} AMI events sent, worst send lateness {worst:.1f} ms")
    print(
        "\nscreen-pop latency, ms (arrival = the listener's arrival time of the agent DialBegin; "
        "socket = time.time() in the browser process)"
    )
    for mode, title in (
        ("db", "DB path (service): tracker -> pop lane reads -> hub.publish_shown_first"),
        ("local", "LOCAL path (database step skipped): tracker -> hub.publish_local"),
    ):
        ids = [i for i, m in probe.mode_of.items() if m == mode]
        got = [i for i in ids if i in received]
        pub = [i for i in ids if i in probe.published]
        print(title)
        if mode == "db":
            split = [
                ("AMI arrival -> publish (batch committed)", probe.arrival, probe.published),
                ("publish -> event_log COMMIT + NOTIFY done", probe.published, probe.committed),
            ]
        else:
            split = [("AMI arrival -> publish_local", probe.arrival, probe.published)]
        for label, start, end in split:
            print(_row(label, [(end[i] - start[i]) * 1000 for i in pub]))
        if mode == "db":
            _hops(probe, [i for i in got if i in probe.published], received)
        print(
            _row(
                "publish -> operator socket",
                [(received[i] - probe.published[i]) * 1000 for i in got if i in probe.published],
            )
        )
        total = _end_to_end(probe, received, mode)
        print(_row("AMI arrival -> operator socket  END TO END", [ms for _, ms in total]))
        if mode == "db":
            waited, filled, twice = _cards(probe, results)
            print(
                _row(
                    "AMI arrival -> call.card_opened on the socket",
                    [(filled[i] - probe.arrival[i]) * 1000 for i in waited if i in filled],
                )
            )
            print(
                f"  {len(waited)} pops went out before their new card (new_caller), "
                f"{sum(1 for i in waited if i in filled)} filled in by call.card_opened on "
                f"the same socket, {twice} card messages twice"
            )
        payloads = probe.payload_bytes.get(mode) or [0]
        frames = [frame_size[i] for i in got] or [0]
        print(
            f"  {len(got)} of {len(ids)} rung calls popped on their operator's socket; "
            f"payload ~{statistics.fmean(payloads):.0f} B, frame ~{statistics.fmean(frames):.0f} B"
        )
        if len(got) != len(ids):
            print(f"  WARNING: {len(ids) - len(got)} pops missing")
        if total:
            t0, windows = total[0][0], {}
            for at, ms in total:
                windows.setdefault(int((at - t0) // 5), []).append(ms)
            print(
                "  end to end by 5 s of the run (p50/p99): "
                + ", ".join(
                    f"{w * 5}-{w * 5 + 5}s {_pct(v, 0.5):.0f}/{_pct(v, 0.99):.0f}"
                    for w, v in sorted(windows.items())
                )
            )
    if duplicates:
        print(f"WARNING: {duplicates} duplicate pops")
    print(
        f"pipeline: {stats['events']} AMI events, {stats['facts']} facts, {stats['batches']} "
        f"batches, {stats['calls_logged']} calls logged, {stats['errors']} errors"
    )


def _hops(probe: Probe, ids: list[str], received: dict[str, float]) -> None:
    """The db path per hop (each hop's own p50/p99), then where the slowest pops' time went."""
    hops = [
        ("arrival -> pop batch starts (queued)", probe.arrival, probe.pop_started),
        ("pop batch start -> its apply done (reads)", probe.pop_started, probe.pop_read),
        ("apply done -> COMMIT done (publish starts)", probe.pop_read, probe.published),
        ("publish -> event_log committed", probe.published, probe.committed),
        ("publish -> Fanout.show here", probe.published, probe.fanned_out),
        ("Fanout.show -> operator socket", probe.fanned_out, received),
    ]
    ids = [i for i in ids if all(i in start and i in end for _, start, end in hops)]
    print("  per hop:")
    for label, start, end in hops:
        print(_row("  " + label, [(end[i] - start[i]) * 1000 for i in ids]))
    slowest = sorted(ids, key=lambda i: received[i] - probe.arrival[i])[-max(1, len(ids) // 50) :]
    shares = ", ".join(
        f"{label.split(' -> ')[1].split(' (')[0]} "
        f"{statistics.fmean((end[i] - start[i]) * 1000 for i in slowest):.1f}"
        for label, start, end in hops
        if label != "publish -> event_log committed"
    )
    print(f"  the slowest {len(slowest)} pops (2%), mean ms per hop: {shares}")


def report_writer(writer: WriterClock, wall: dict[str, float], collector: GcClock) -> None:
    for mode in ("db", "local"):
        pauses = collector.pauses.get(mode) or [0.0]
        print(
            f"service GC during {mode}: {len(collector.pauses.get(mode, []))} collections, "
            f"{sum(1 for p in pauses if p >= 2)} of them >= 2 ms, "
            f"{sum(1 for p in pauses if p >= 10)} >= 10 ms, longest {max(pauses):.0f} ms, "
            f"{sum(pauses):.0f} ms in all"
        )
    for mode in ("warmup", "db"):
        if mode not in wall or mode not in writer.batches:
            continue
        for lane, sizes in sorted(writer.batches[mode].items()):
            busy = writer.busy[mode][lane]
            print(
                f"CallPipeline {lane} lane during {mode}: {len(sizes)} batches (mean "
                f"{statistics.fmean(sizes):.1f} facts, max {max(sizes)}, longest "
                f"{writer.longest[mode][lane]:.0f} ms), busy {busy:.1f} s of {wall[mode]:.1f} s "
                f"({100 * busy / wall[mode]:.0f}%)"
            )
        print(
            "  per fact, ms p50/p99: "
            + ", ".join(
                f"{kind} {_pct(v, 0.5):.1f}/{_pct(v, 0.99):.1f}"
                for kind, v in sorted(writer.per_fact.get(mode, {}).items())
            )
        )


def verdict(probe: Probe, results: dict[str, Any], logged_twice: int) -> str:
    received, _, duplicates = _received(results)
    total = [ms for _, ms in _end_to_end(probe, received, "db")]
    local = [ms for _, ms in _end_to_end(probe, received, "local")]
    expected = sum(1 for m in probe.mode_of.values() if m == "db")
    if not total or not local:
        return "targets: NOT MET (no pops measured)"
    p99, local_p99 = _pct(total, 0.99), _pct(local, 0.99)
    new = [ms for i, ms in _by_id(probe, received, "db") if probe.new_client.get(i)]
    known = [ms for i, ms in _by_id(probe, received, "db") if not probe.new_client.get(i)]
    waited, filled, cards_twice = _cards(probe, results)
    unfilled = sum(1 for i in waited if i not in filled)
    delivered = len(total) == expected and not (
        duplicates or logged_twice or unfilled or cards_twice
    )
    ok5 = p99 <= TARGET_P99_MS and len(total) == expected
    ok13 = p99 <= 2 * local_p99 and delivered
    return (
        f"\ndb path p99 {p99:.1f} ms ({len(total)}/{expected} pops; callers new to the CRM "
        f"p99 {_pct(new, 0.99):.1f} ms n={len(new)}, known p99 {_pct(known, 0.99):.1f} ms "
        f"n={len(known)}); local path p99 {local_p99:.1f} ms: ratio {p99 / local_p99:.2f}x; "
        f"{duplicates} duplicate pops, {logged_twice} pops or cards logged twice in event_log; "
        f"{unfilled} of {len(waited)} new callers' pops never filled in, {cards_twice} cards "
        f"twice\n"
        f"TARGET (issue 5): p99 AMI arrival -> operator socket <= {TARGET_P99_MS:g} ms, every "
        f"pop delivered, on the service's (db) path: {'MET' if ok5 else 'NOT MET'}\n"
        f"TARGET (issue 13): db p99 <= 2x the local path's in the same run, every pop delivered, "
        f"nothing logged twice: {'MET' if ok13 else 'NOT MET'}"
    )


def _cards(probe: Probe, results: dict[str, Any]) -> tuple[list[str], dict[str, float], int]:
    """The db path's pops that went out before their card (new_caller), when the card reached
    the pop's own socket (call.card_opened), and card messages received twice."""
    channel = {linkedid: ch for linkedid, _, _, ch in results["pops"]}
    filled: dict[str, float] = {}
    twice = 0
    for linkedid, at, ch in results.get("cards", []):
        if ch != channel.get(linkedid):
            continue
        if linkedid in filled:
            twice += 1
            continue
        filled[linkedid] = at
    waited = [i for i, m in probe.mode_of.items() if m == "db" and probe.new_caller.get(i)]
    return waited, filled, twice


def _by_id(probe: Probe, received: dict[str, float], mode: str) -> list[tuple[str, float]]:
    ids = [i for i, m in probe.mode_of.items() if m == mode and i in received]
    return [(i, (received[i] - probe.arrival[i]) * 1000) for i in ids]


async def pops_logged_twice(url: str) -> int:
    """call.ringing (or call.card_opened) rows of one call on one operator's channel more than
    once in event_log."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                """
                SELECT count(*) FROM (
                    SELECT 1 FROM event_log
                    WHERE type IN ('call.ringing', 'call.card_opened') AND channel LIKE 'ext:%'
                    GROUP BY type, channel, payload->'call'->>'linkedid' HAVING count(*) > 1) d
                """
            )
        )
    finally:
        await conn.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--pbx":
        _run(pbx_main(int(sys.argv[2]), int(sys.argv[3])))
    elif len(sys.argv) > 1 and sys.argv[1] == "--clients":
        tokens = json.loads(Path(sys.argv[3]).read_text())
        outcome = _run(clients_main(int(sys.argv[2]), tokens))
        Path(sys.argv[4]).write_text(json.dumps(outcome))
        print("DONE", flush=True)
    else:
        _run(main())
