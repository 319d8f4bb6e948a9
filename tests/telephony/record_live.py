"""Record real AMI traffic from a kit Asterisk into asterisk/recordings/ (run by hand, not a test).

    asterisk/kit/run.sh start /tmp/pbx --ami-port 15201 --agi-port 14701
    .venv/bin/python -m tests.telephony.record_live --ami-port 15201 --agi-port 14701 \\
        --rundir /tmp/pbx SCENARIO [SCENARIO ...]

Each scenario opens its own *recording* connection (Login with ``Events: on``) and saves every
byte it receives, as the existing recordings are: the banner, the Login response, then every
message, ``\\r\\n`` line ends and a blank line after each. Actions that drive the call (Originate,
DBPut, BlindTransfer…) go over a second *control* connection with ``Events: off``, so the
recording holds only what a listening service would receive. The recorder also plays the
FastAGI router (``CRM_TARGET`` "101"), one command per reply as Asterisk requires.

A scenario's truth file is written by hand from the printed key events (see the README there).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from telephony.ami_wire import AmiEvent, AmiFramer, action_headers, parse_message, serialize
from tests.telephony.helpers import parse_stream

USER, SECRET = "crm", "crmsecret"
DID = "84951112233"
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "asterisk" / "recordings"
RUN_SH = ROOT / "asterisk" / "kit" / "run.sh"
Event = dict[str, str]


@dataclass
class Recorder:
    """The recording connection: raw bytes to a file, parsed events for the scenario to wait on."""

    port: int
    raw: bytearray = field(default_factory=bytearray)
    events: list[Event] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False

    async def connect(self, snapshot: bool = False) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.task = asyncio.create_task(self._read())
        login = "Action: Login\r\nActionID: rec-login\r\nUsername: crm\r\nSecret: crmsecret\r\n"
        self.writer.write((login + "Events: on\r\n\r\n").encode())
        if snapshot:
            # What the service does after each login: ask which channels are up right now.
            self.writer.write(b"Action: CoreShowChannels\r\nActionID: rec-snapshot\r\n\r\n")
        await self.writer.drain()

    async def _read(self) -> None:
        framer = AmiFramer(parse_message)
        while True:
            data = await self.reader.read(65536)
            if not data:
                break
            self.raw += data
            for message in framer.feed(data):
                if isinstance(message, AmiEvent):
                    self.events.append(message)
                    self.changed.set()
        self.closed = True
        self.changed.set()

    async def wait_for(self, pred: Callable[[Event], bool], timeout: float = 60) -> Event:
        deadline = time.monotonic() + timeout
        i = 0
        while True:
            for event in self.events[i:]:
                if pred(event):
                    return event
            i = len(self.events)
            if self.closed or time.monotonic() > deadline:
                raise TimeoutError("event not seen")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), deadline - time.monotonic())
            except TimeoutError:
                pass

    async def wait_idle(self, timeout: float = 90) -> None:
        """Until every channel seen since the recording began has hung up (plus stragglers)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.closed:
            born = {e["Uniqueid"] for e in self.events if e["Event"] in ("Newchannel",)}
            born |= {e["Uniqueid"] for e in self.events if e["Event"] == "CoreShowChannel"}
            dead = {e["Uniqueid"] for e in self.events if e["Event"] == "Hangup"}
            if born and born <= dead:
                await asyncio.sleep(1.0)
                return
            await asyncio.sleep(0.2)
        if not self.closed:
            raise TimeoutError("calls still up")

    async def save(self, name: str) -> Path:
        if not self.closed:
            self.writer.write(b"Action: Logoff\r\nActionID: rec-logoff\r\n\r\n")
            await self.writer.drain()
            await asyncio.sleep(0.3)
            self.writer.close()
        raw = bytes(self.raw)
        # Keep whole messages only, up to the logoff: the recording ends with the call.
        cut = raw.find(b"Response: Goodbye")
        if cut >= 0:
            raw = raw[:cut]
        path = OUT / f"{name}.ami"
        path.write_bytes(raw)
        return path


class Control:
    """The control connection: actions only, one at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ids = itertools.count(1)

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        await self.reader.readline()
        await self.action("Login", Username=USER, Secret=SECRET, Events="off")

    async def action(self, name: str, **fields: str | list[str]) -> Event:
        aid = f"ctl-{next(self.ids)}"
        self.writer.write(serialize(action_headers({"Action": name, "ActionID": aid, **fields})))
        await self.writer.drain()
        while True:
            block = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 15)
            message = parse_message(block)
            if message.get("ActionID") == aid and "Response" in message:
                return message

    async def db(self, family: str, key: str, val: str | None = None) -> None:
        if val is None:
            await self.action("DBDel", Family=family, Key=key)
        else:
            await self.action("DBPut", Family=family, Key=key, Val=val)


async def fastagi(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while (await reader.readline()).strip():
        pass
    writer.write(b'SET VARIABLE CRM_TARGET "101"\n')
    await writer.drain()
    await reader.readline()
    writer.close()


def inbound(caller: str, name: str, talk: int, exten: str = DID) -> dict[str, str | list[str]]:
    return {
        "Channel": "Local/s@caller-sim",
        "Context": "from-pstn",
        "Exten": exten,
        "Priority": "1",
        "CallerID": f'"{name}" <{caller}>',
        "Async": "true",
        "Variable": f"TALK={talk}",
    }


def from_101(
    context: str, number: str, caller_id: str, *variables: str
) -> dict[str, str | list[str]]:
    """An Originate of a call placed from 101's phone to `number` through `context`."""
    fields: dict[str, str | list[str]] = {
        "Channel": "Local/101@agent-phones",
        "Context": context,
        "Exten": number,
        "Priority": "1",
        "CallerID": caller_id,
        "Async": "true",
        "Timeout": "30000",
    }
    if variables:
        fields["Variable"] = list(variables)
    return fields


def answered(ext: str) -> Callable[[Event], bool]:
    def pred(e: Event) -> bool:
        return (
            e["Event"] == "DialEnd"
            and e.get("DialStatus") == "ANSWER"
            and e.get("DestChannel", "").startswith(f"Local/{ext}@agent-phones")
            and bool(e.get("Channel"))
        )

    return pred


@dataclass
class Ctx:
    ami_port: int
    rundir: str
    ctl: Control


Scenario = Callable[[Ctx], Awaitable[Recorder]]


async def _recorded(ctx: Ctx) -> Recorder:
    rec = Recorder(ctx.ami_port)
    await rec.connect()
    await rec.wait_for(lambda e: e["Event"] == "SuccessfulAuth", 10)
    return rec


async def _originated(ctx: Ctx, fields: dict[str, str | list[str]]) -> Recorder:
    """Record the call an Originate of `fields` places (inbound, from_101), to its end."""
    rec = await _recorded(ctx)
    await ctx.ctl.action("Originate", **fields)
    await rec.wait_idle()
    return rec


async def _answered_by_101(ctx: Ctx, caller: str, name: str, talk: int) -> tuple[Recorder, Event]:
    """Record a call from `caller` that 101 answers (both phones stay on for 30 s); the
    recorder and 101's DialEnd ANSWER (its DestChannel is 101's bridged channel)."""
    await ctx.ctl.db("agenttalk", "101", "30")
    await ctx.ctl.db("agenttalk", "102", "30")
    rec = await _recorded(ctx)
    await ctx.ctl.action("Originate", **inbound(caller, name, talk))
    return rec, await rec.wait_for(answered("101"))


async def _click_to_call(ctx: Ctx, number: str) -> Recorder:
    """Record a click-to-call by 101 (deal 42, user 7) to `number`, to its end."""
    fields = from_101(
        "crm-outbound", number, '"Manager 101" <101>', "CRM_DEAL_ID=42", "CRM_USER_ID=7"
    )
    return await _originated(ctx, fields)


async def _blind_transfer(ctx: Ctx, caller: str, name: str, talk: int, to: str) -> Recorder:
    """101 answers `caller`, blind-transfers to `to` after 2 s; the call runs to its end."""
    rec, dial = await _answered_by_101(ctx, caller, name, talk)
    await asyncio.sleep(2)
    await ctx.ctl.action(
        "BlindTransfer", Channel=dial["DestChannel"], Context="transfer-internal", Exten=to
    )
    await rec.wait_idle()
    return rec


async def sc_blind_transfer_caller_hangs_up(ctx: Ctx) -> Recorder:
    """101 answers, blind-transfers to 102 after 2 s; 102 talks on; the caller hangs up."""
    return await _blind_transfer(ctx, "+79167770002", "Blind Caller", 8, "102")


async def sc_blind_transfer_by_phone(ctx: Ctx) -> Recorder:
    """As blind_transfer_caller_hangs_up, but the phone keys the transfer: #1 then 102."""
    rec, dial = await _answered_by_101(ctx, "+79167770006", "Phone Transfer", 8)
    await asyncio.sleep(1.5)
    for digit in "#1102":
        await ctx.ctl.action("PlayDTMF", Channel=dial["DestChannel"], Digit=digit, Receive="true")
        await asyncio.sleep(0.15)
    await rec.wait_idle()
    return rec


async def sc_attended_transfer(ctx: Ctx) -> Recorder:
    """101 answers, consults 102 (Atxfer), hangs up to complete it; the caller hangs up later."""
    rec, dial = await _answered_by_101(ctx, "+79167770003", "Attended Caller", 10)
    agent = dial["DestChannel"]
    await asyncio.sleep(1.5)
    await ctx.ctl.action("Atxfer", Channel=agent, Exten="102", Context="transfer-internal")
    await rec.wait_for(answered("102"))
    await asyncio.sleep(1.5)
    await ctx.ctl.action("Hangup", Channel=agent)
    await rec.wait_idle()
    return rec


async def sc_blind_transfer_queue(ctx: Ctx) -> Recorder:
    """101 answers, blind-transfers into queue sales; a member answers; the caller hangs up."""
    return await _blind_transfer(ctx, "+79167770004", "Queue Transfer", 10, "sales")


async def sc_click_to_call_busy(ctx: Ctx) -> Recorder:
    """Click-to-call by 101 to a busy number: DialEnd BUSY."""
    await ctx.ctl.db("busy", "79161234598", "1")
    rec = await _click_to_call(ctx, "79161234598")
    await ctx.ctl.db("busy", "79161234598")
    return rec


async def sc_hold_resume(ctx: Ctx) -> Recorder:
    """101 answers, presses hold 3 s later (6 s of music), resumes; the agent hangs up at 12 s."""
    await ctx.ctl.db("hold", "101", "1")
    await ctx.ctl.db("agenttalk", "101", "12")
    rec = await _originated(ctx, inbound("+79168880004", "Hold Me", 20))
    await ctx.ctl.db("hold", "101")
    return rec


async def sc_asterisk_stopped_mid_call(ctx: Ctx) -> Recorder:
    """101 answers; 3 s into the talk Asterisk is stopped (core stop now): Shutdown."""
    rec = await _recorded(ctx)
    await ctx.ctl.action("Originate", **inbound("+79168880005", "Shutdown Caller", 30))
    await rec.wait_for(answered("101"))
    await asyncio.sleep(3)
    # Async, so that the recording connection keeps reading while Asterisk stops.
    stop = await asyncio.create_subprocess_exec(str(RUN_SH), "stop", ctx.rundir)
    await stop.wait()
    for _ in range(200):  # Shutdown, then Asterisk closes the connection
        if rec.closed:
            break
        await asyncio.sleep(0.1)
    return rec


async def sc_service_started_after_blind_transfer(ctx: Ctx) -> Recorder:
    """inbound_blind_transfer_dial, with the recording (the service) connecting 5 s in."""
    await ctx.ctl.db("agenttalk", "101", "30")
    await ctx.ctl.db("agenttalk", "102", "30")
    watch = await _recorded(ctx)  # only to steer the call; not saved
    await ctx.ctl.action("Originate", **inbound("+79167770005", "Late Service", 10))
    dial = await watch.wait_for(answered("101"))
    await asyncio.sleep(2)
    await ctx.ctl.action(
        "BlindTransfer", Channel=dial["DestChannel"], Context="transfer-internal", Exten="102"
    )
    await watch.wait_for(answered("102"))
    await asyncio.sleep(1)
    rec = Recorder(ctx.ami_port)
    await rec.connect(snapshot=True)
    await rec.wait_idle()
    await watch.wait_idle()
    # The whole call as a connected client saw it: the truth file's times come from it.
    full = await watch.save("_full")
    full.rename(Path("/tmp") / "service_started_after_blind_transfer.full.ami")
    return rec


async def sc_inbound_recorded(ctx: Ctx) -> Recorder:
    """+79161234567 calls, 101 answers, the caller hangs up after 6 s; MixMonitor records it."""
    return await _originated(ctx, inbound("+79161234567", "Ivan Petrov", 6))


async def sc_inbound_recorded_abandoned(ctx: Ctx) -> Recorder:
    """89031234567 calls, 101 never answers, the caller gives up after 4 s: a header-only WAV."""
    await ctx.ctl.db("noanswer", "101", "1")
    rec = await _originated(ctx, inbound("89031234567", "Caller", 4))
    await ctx.ctl.db("noanswer", "101")
    return rec


async def sc_ring_group_second_answers(ctx: Ctx) -> Recorder:
    """DID 84951110002 rings 101 and 102 at once; 101 never answers, 102 does (101: CANCEL)."""
    await ctx.ctl.db("noanswer", "101", "1")
    await ctx.ctl.db("agenttalk", "102", "5")
    rec = await _originated(ctx, inbound("+79168880002", "Ring Group", 20, exten="84951110002"))
    await ctx.ctl.db("noanswer", "101")
    return rec


async def sc_agent_dials_out(ctx: Ctx) -> Recorder:
    """101 dials 79161234599 from the phone (from-internal): no CRM variables."""
    await ctx.ctl.db("pstntalk", "79161234599", "4")
    rec = await _originated(ctx, from_101("from-internal", "79161234599", '"Olga 101" <101>'))
    await ctx.ctl.db("pstntalk", "79161234599")
    return rec


async def sc_click_to_call_no_answer(ctx: Ctx) -> Recorder:
    """Click-to-call by 101 to a number that never answers: Dial gives up after 30 s."""
    await ctx.ctl.db("noanswer", "79161234597", "1")
    await ctx.ctl.db("agenttalk", "101", "45")  # the agent's phone waits out Dial's 30 s
    rec = await _click_to_call(ctx, "79161234597")
    await ctx.ctl.db("noanswer", "79161234597")
    await ctx.ctl.db("agenttalk", "101")
    return rec


SCENARIOS: dict[str, Scenario] = {
    n[3:]: f for n, f in globals().items() if n.startswith("sc_") and callable(f)
}


def key_events(rec: Recorder) -> None:
    keep = {
        "Newchannel",
        "DialBegin",
        "DialEnd",
        "BridgeEnter",
        "BlindTransfer",
        "AttendedTransfer",
        "Hold",
        "Unhold",
        "MusicOnHoldStart",
        "MusicOnHoldStop",
        "HangupRequest",
        "SoftHangupRequest",
        "Hangup",
        "Shutdown",
        "CoreShowChannel",
        "QueueCallerJoin",
        "AgentConnect",
    }
    for e in rec.events:
        if e["Event"] in keep:
            detail = " ".join(
                f"{k}={e[k]}"
                for k in ("Channel", "DestChannel", "DialStatus", "Cause", "Context", "Linkedid")
                if k in e
            )
            print(f"  {e.get('Timestamp', '-'):>18} {e['Event']:<18} {detail}")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ami-port", type=int, default=0)
    ap.add_argument("--agi-port", type=int, default=0)
    ap.add_argument("--rundir", default="")
    ap.add_argument("--name", help="file name to save under (default: the scenario's)")
    ap.add_argument("--truth", action="store_true", help="print truth drafts of saved recordings")
    ap.add_argument("scenarios", nargs="+")
    args = ap.parse_args()
    if args.truth:
        for name in args.scenarios:
            print(json.dumps(draft_truth(name), indent=1))
        return
    server = await asyncio.start_server(fastagi, "127.0.0.1", args.agi_port)
    ctl = Control(args.ami_port)
    await ctl.connect()
    for name in args.scenarios:
        print(f"== {name}")
        rec = await SCENARIOS[name](Ctx(args.ami_port, args.rundir, ctl))
        path = await rec.save(args.name or name)
        key_events(rec)
        print(f"  saved {path}")
    server.close()


# ------------------------------------------------------------------------------ truth drafts
# Measured from the recording by the definitions in the truth files, independently of the
# tracker: who ran Hangup() first, DialBegin/DialEnd pairs, Hold/Unhold and music intervals.


def _ts(e: Event) -> float:
    return float(e["Timestamp"])


def _ext(channel: str) -> str:
    return channel.split("/", 1)[1].split("@", 1)[0]


def _main_start(events: list[Event]) -> tuple[Event, str] | None:
    for e in events:
        # from-internal: an agent dialling out from the phone, as crm-outbound but by hand
        if e["Event"] == "Newexten" and e.get("Context") in (
            "from-pstn",
            "crm-outbound",
            "from-internal",
        ):
            return e, "inbound" if e["Context"] == "from-pstn" else "outbound"
    return None


def _hung_up_by(events: list[Event], main_uid: str) -> str | None:
    for e in events:
        if e["Event"] == "SoftHangupRequest" and int(e.get("Cause", "0")) & 4:
            return "pbx"
        if e["Event"] != "Newexten" or e.get("Application") != "Hangup":
            continue
        ctx, chan = e.get("Context", ""), e.get("Channel", "")
        if ctx == "caller-sim":
            return "caller"
        if ctx == "agent-phones":
            return f"agent {_ext(chan)}"
        if ctx == "pstn-sim":
            return "client"
        if e["Uniqueid"] == main_uid:
            return "pbx"
    return None


def _union(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def _hold_s(events: list[Event], t_answer: float | None) -> float:
    opened: dict[str, float] = {}
    queued: set[str] = set()
    spans: list[tuple[float, float]] = []
    for e in events:
        name, uid = e["Event"], e.get("Uniqueid", "")
        if name == "QueueCallerJoin":
            queued.add(uid)
        elif name in ("AgentConnect", "QueueCallerLeave"):
            queued.discard(uid)
        elif name in ("Hold", "MusicOnHoldStart"):
            if t_answer is not None and _ts(e) >= t_answer and uid not in queued:
                opened.setdefault(f"{name[:4]}:{uid}", _ts(e))
        elif name in ("Unhold", "MusicOnHoldStop", "Hangup"):
            keys = {"Unhold": ["Hold"], "MusicOnHoldStop": ["Musi"], "Hangup": ["Hold", "Musi"]}
            for k in keys[name]:
                start = opened.pop(f"{k}:{uid}", None)
                if start is not None:
                    spans.append((start, _ts(e)))
    return _union(spans)


def draft_truth(name: str) -> dict[str, object]:
    events: list[Event] = [
        m for m in parse_stream((OUT / f"{name}.ami").read_bytes()) if "Event" in m
    ]
    timed = [e for e in events if "Timestamp" in e]
    found = _main_start(timed)
    assert found is not None, "no start in the recording"
    start, direction = found
    main_uid, t_start = start["Uniqueid"], _ts(start)
    target = "agent-phones" if direction == "inbound" else "pstn-sim"
    queue_dests = {e["DestUniqueid"] for e in timed if e["Event"] == "AgentCalled"}
    attempts = []
    for begin in timed:
        dest = begin.get("DestChannel", "")
        if begin["Event"] != "DialBegin" or not begin.get("Channel") or f"@{target}" not in dest:
            continue
        end = next(
            e
            for e in timed
            if e["Event"] == "DialEnd" and e.get("DestUniqueid") == begin["DestUniqueid"]
        )
        attempts.append(
            {
                "ext": _ext(dest),
                "via": "queue" if begin["DestUniqueid"] in queue_dests else "dial",
                "context": begin["Context"],
                "result": end["DialStatus"],
                "ring_s": round(_ts(end) - _ts(begin), 2),
                "_begin": _ts(begin),
                "_end": _ts(end),
            }
        )
    answer = next((a for a in attempts if a["result"] == "ANSWER"), None)
    t_answer = float(str(answer["_end"])) if answer else None
    hangup = next(e for e in timed if e["Event"] == "Hangup" and e["Uniqueid"] == main_uid)
    t_end = _ts(hangup)
    first_ring = float(str(attempts[0]["_begin"])) if attempts else None
    until = t_answer if t_answer is not None else t_end
    transfers = [e for e in timed if e["Event"] in ("BlindTransfer", "AttendedTransfer")]
    hung_up_by = _hung_up_by(timed, main_uid)
    if t_answer is not None:
        status = "answered"
    elif direction == "inbound":
        status = "abandoned" if hung_up_by == "caller" else "missed"
    else:
        status = "busy" if attempts and attempts[-1]["result"] == "BUSY" else "no_answer"
    call: dict[str, object] = {
        "linkedid": start["Linkedid"],
        "direction": direction,
    }
    if direction == "inbound":
        call |= {"caller": start["CallerIDNum"], "caller_name": start["CallerIDName"]}
        call |= {"did": start["Exten"]}
    else:
        call |= {"agent": _ext(start["Channel"]), "dialled_number": start["Exten"]}
    call |= {
        "rang": [a["ext"] for a in attempts],
        "ring_attempts": [{k: v for k, v in a.items() if not k.startswith("_")} for a in attempts],
        "answered_by": (str(answer["ext"]) if direction == "inbound" else "client")
        if answer
        else None,
        "transferred": bool(transfers),
        "transferred_to": None,
        "status": status,
        "ring_s": round(until - first_ring, 2) if first_ring is not None else 0.0,
    }
    if direction == "inbound":
        call["wait_s"] = round(until - t_start, 2)
    call["talk_s"] = round(t_end - t_answer, 2) if t_answer is not None else 0.0
    if transfers:
        x = transfers[0]
        blind = x["Event"] == "BlindTransfer"
        by = x["TransfererChannel"] if blind else x["OrigTransfererChannel"]
        after = [a for a in attempts if float(str(a["_begin"])) < _ts(x) or True]
        to = x["Extension"] if blind else str(after[-1]["ext"])
        call["transferred_to"] = to
        call["transfer"] = {
            "type": "blind" if blind else "attended",
            "by": _ext(by),
            "to": to,
            "at_s": round(_ts(x) - t_start, 2),
        }
        if t_answer is not None:
            call["talk_before_transfer_s"] = round(_ts(x) - t_answer, 2)
            call["talk_after_transfer_s"] = round(t_end - _ts(x), 2)
    call |= {
        "hung_up_by": hung_up_by,
        "hangup_cause": hangup.get("Cause-txt"),
        "hold_s": round(_hold_s(timed, t_answer), 2),
        "t_start": start["Timestamp"],
        "t_answer": answer
        and next(
            e["Timestamp"]
            for e in timed
            if e["Event"] == "DialEnd" and _ts(e) == answer["_end"] and e.get("Channel")
        ),
        "t_end": hangup["Timestamp"],
        "missed": direction == "inbound" and t_answer is None,
    }
    return call


if __name__ == "__main__":
    asyncio.run(main())
