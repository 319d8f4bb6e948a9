"""The AMI replay server, spoken to over TCP by a minimal raw client (no code of the listener)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from telephony.testing.replay import ReplayServer, load_recording
from tests.telephony.helpers import AMI_DIR, replay_server

ABANDONED = AMI_DIR / "inbound_abandoned.ami"
TRANSFER = AMI_DIR / "inbound_blind_transfer_dial.ami"


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.banner = ""

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        client.banner = (await reader.readline()).decode()
        return client

    async def send(self, *headers: tuple[str, str]) -> None:
        self.writer.write(("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode())
        await self.writer.drain()

    async def read(self, within: float = 2.0) -> dict[str, str]:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), within)
        message: dict[str, str] = {}
        for line in raw.decode().split("\r\n"):
            if line:
                name, _, value = line.partition(": ")
                message[name] = f"{message[name]}\n{value}" if name in message else value
        return message

    async def login(self, secret: str = "crmsecret") -> dict[str, str]:
        await self.send(
            ("Action", "Login"), ("ActionID", "l1"), ("Username", "crm"), ("Secret", secret)
        )
        return await self.read()

    async def events(self, n: int, within: float = 3.0) -> list[dict[str, str]]:
        return [await self.read(within) for _ in range(n)]

    async def close(self) -> None:
        self.writer.close()


@pytest.fixture
async def server() -> AsyncIterator[ReplayServer]:
    async with replay_server() as srv:
        yield srv


@pytest.fixture
async def client(server: ReplayServer) -> AsyncIterator[RawClient]:
    c = await RawClient.connect(server.port)
    reply = await c.login()
    assert reply == {"Response": "Success", "ActionID": "l1", "Message": "Authentication accepted"}
    booted = await c.read()
    assert booted["Event"] == "FullyBooted"
    yield c
    await c.close()


async def test_banner_and_refused_login_closes_like_asterisk(server: ReplayServer) -> None:
    c = await RawClient.connect(server.port)
    assert c.banner == "Asterisk Call Manager/11.0.0\r\n"
    reply = await c.login(secret="nope")
    assert reply == {"Response": "Error", "ActionID": "l1", "Message": "Authentication failed"}
    assert await asyncio.wait_for(c.reader.read(), 2) == b""  # closed by the server


async def test_actions_before_login_are_refused(server: ReplayServer) -> None:
    c = await RawClient.connect(server.port)
    await c.send(("Action", "Ping"), ("ActionID", "p"))
    assert (await c.read())["Message"] == "Authentication Required"
    await c.close()


async def test_ping_unknown_logoff(client: RawClient) -> None:
    await client.send(("Action", "Ping"), ("ActionID", "p1"))
    pong = await client.read()
    assert pong["Response"] == "Success" and pong["Ping"] == "Pong" and pong["ActionID"] == "p1"
    assert abs(float(pong["Timestamp"]) - time.time()) < 5
    await client.send(("Action", "Frobnicate"), ("ActionID", "f"))
    assert await client.read() == {
        "Response": "Error",
        "ActionID": "f",
        "Message": "Invalid/unknown command",
    }
    await client.send(("Action", "Logoff"), ("ActionID", "bye"))
    assert (await client.read())["Response"] == "Goodbye"
    assert await asyncio.wait_for(client.reader.read(), 2) == b""


async def test_originate_is_queued_then_answered_by_an_event(
    server: ReplayServer, client: RawClient
) -> None:
    await client.send(
        ("Action", "Originate"),
        ("ActionID", "o1"),
        ("Channel", "PJSIP/101"),
        ("Context", "crm-outbound"),
        ("Exten", "79161234567"),
        ("Priority", "1"),
        ("Async", "true"),
    )
    assert await client.read() == {
        "Response": "Success",
        "ActionID": "o1",
        "Message": "Originate successfully queued",
    }
    event = await client.read()
    assert event["Event"] == "OriginateResponse" and event["ActionID"] == "o1"
    assert event["Response"] == "Success" and event["Reason"] == "4"
    assert server.originates[0]["Exten"] == "79161234567"


async def test_plays_a_recording_exactly(server: ReplayServer, client: RawClient) -> None:
    expected = [dict(e) for e in load_recording(ABANDONED)]
    await server.play(ABANDONED, speed=0, shift_to_now=False, renumber=False)
    got = await client.events(len(expected))
    await asyncio.wait_for(server.wait_played(), 2)
    assert got == expected
    assert expected[0]["Event"] != "FullyBooted"  # the recorder's session event is not replayed


async def test_paced_by_timestamps(server: ReplayServer, client: RawClient) -> None:
    events = load_recording(ABANDONED)
    stamps = [float(v) for e in events for k, v in e if k == "Timestamp"]
    span = stamps[-1] - stamps[0]  # 5 s of recorded time
    started = time.monotonic()
    await server.play(ABANDONED, speed=25)
    await client.events(len(events))
    elapsed = time.monotonic() - started
    # paced (not all at once), and faster than the recording's own time (not real time)
    assert span / 25 * 0.9 <= elapsed < span


async def test_shift_to_now_and_strip_timestamps(server: ReplayServer, client: RawClient) -> None:
    events = load_recording(ABANDONED)
    await server.play(ABANDONED, speed=0, shift_to_now=True)
    shifted = await client.events(len(events))
    assert abs(float(shifted[0]["Timestamp"]) - time.time()) < 2
    await server.play(ABANDONED, speed=0, strip_timestamps=True)
    stripped = await client.events(len(events))
    assert not any("Timestamp" in e for e in stripped)


async def test_renumbering_makes_new_consistent_calls_each_loop(
    server: ReplayServer, client: RawClient
) -> None:
    original = [dict(e) for e in load_recording(TRANSFER)]
    n = len(original)
    await server.play(TRANSFER, speed=0, loop=True, shift_to_now=True, renumber=True)
    passes = [await client.events(n), await client.events(n)]
    await server.close()  # stop the loop
    id_fields = re.compile(r".*(Uniqueid|Linkedid|Channel)$")
    seen_values: list[set[str]] = []
    for played in passes:
        mapping: dict[tuple[str, str], str] = {}
        values: set[str] = set()
        for before, after in zip(original, played, strict=True):
            assert before.keys() == after.keys()
            for key, old in before.items():
                if not id_fields.match(key) or not old:
                    continue
                kind = "chan" if key.endswith("Channel") else key
                kind = "bridge" if key == "BridgeUniqueid" else kind
                kind = "uid" if kind not in ("chan", "bridge") else kind
                # the same old id always becomes the same new id within a pass
                assert mapping.setdefault((kind, old), after[key]) == after[key]
                values.add(after[key])
        # and different old ids never merge
        assert len(set(mapping.values())) == len(mapping)
        seen_values.append(values)
        # the two halves of a Local channel keep one sequence number
        chans = {old: new for (kind, old), new in mapping.items() if kind == "chan"}
        pairs = [(o, o[:-1] + "2") for o in chans if o.endswith(";1") and o[:-1] + "2" in chans]
        assert pairs
        assert all(chans[one][:-2] == chans[two][:-2] for one, two in pairs)
    # each pass makes new calls: no uniqueid or channel name of pass 1 reappears in pass 2
    uid = re.compile(r"^\d+\.\d+$")
    first = {v for v in seen_values[0] if uid.match(v)}
    assert first and not first & seen_values[1]
    local1 = {v for v in seen_values[0] if v.startswith("Local/")}
    assert local1 and not local1 & seen_values[1]


async def test_core_show_channels_lists_live_channels(
    server: ReplayServer, client: RawClient, tmp_path: Path
) -> None:
    chunks = ABANDONED.read_bytes().split(b"\r\n\r\n")
    part = tmp_path / "part.ami"
    part.write_bytes(b"\r\n\r\n".join(chunks[:30]) + b"\r\n\r\n")
    n = len(load_recording(part))
    await server.play(part, speed=0, renumber=False, shift_to_now=False)
    played = await client.events(n)
    live = {e["Channel"] for e in played if e["Event"] == "Newchannel"} - {
        e["Channel"] for e in played if e["Event"] == "Hangup"
    }
    await client.send(("Action", "CoreShowChannels"), ("ActionID", "c"))
    start = await client.read()
    assert start["EventList"] == "start" and start["ActionID"] == "c"
    listed = []
    while (msg := await client.read())["Event"] == "CoreShowChannel":
        assert msg["ActionID"] == "c" and "Privilege" not in msg
        listed.append(msg)
    assert msg["Event"] == "CoreShowChannelsComplete" and msg["ListItems"] == str(len(listed))
    assert live and {m["Channel"] for m in listed} == live
    assert all(re.match(r"\d\d:\d\d:\d\d$", m["Duration"]) for m in listed)


async def test_cut_after_then_resume_where_it_stopped(
    server: ReplayServer, client: RawClient
) -> None:
    expected = [dict(e) for e in load_recording(ABANDONED)]
    server.cut_after(20)
    await server.play(ABANDONED, speed=0, renumber=False, shift_to_now=False)
    first = await client.events(20)
    assert await asyncio.wait_for(client.reader.read(), 2) == b""
    again = await RawClient.connect(server.port)
    await again.login()
    await again.read()  # FullyBooted
    rest = await again.events(len(expected) - 20)
    await asyncio.wait_for(server.wait_played(), 2)
    assert first + rest == expected
    await again.close()


async def test_read_permissions_filter_events(tmp_path: Path) -> None:
    srv = ReplayServer(read_perm="system,call")
    await srv.start()
    try:
        c = await RawClient.connect(srv.port)
        await c.login()
        await c.read()
        allowed = [
            dict(e)
            for e in load_recording(ABANDONED)
            if dict(e)["Privilege"].split(",")[0] in ("call", "system")
        ]
        await srv.play(ABANDONED, speed=0, renumber=False, shift_to_now=False)
        got = await c.events(len(allowed))
        await asyncio.wait_for(srv.wait_played(), 2)
        assert got == allowed
        await c.send(("Action", "Command"), ("ActionID", "x"), ("Command", "manager show user crm"))
        out = (await c.read())["Output"]
        assert "read perm: call,system" in out
        await c.close()
    finally:
        await srv.close()
