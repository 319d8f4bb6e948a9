"""AmiListener over real TCP: the replay server or a small raw asyncio server stands in for
Asterisk. One test per panoramisk 1.4 fault (docs/PANORAMISK.md) proves our remedy."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from telephony.ami_listener import (
    AmiActionTimeout,
    AmiConnectionLost,
    AmiListener,
    AmiNotConnected,
    AmiState,
)
from telephony.ami_wire import parse_message
from telephony.panoramisk_fixes import PendingAction
from telephony.settings import TelephonySettings
from telephony.testing.replay import ReplayServer, load_recording
from tests.telephony.helpers import AMI_DIR, replay_server

CLICK = AMI_DIR / "click_to_call.ami"
INBOUND = AMI_DIR / "inbound_answered.ami"


def make_settings(port: int, **overrides: Any) -> TelephonySettings:
    values: dict[str, Any] = {
        "AMI_HOST": "127.0.0.1",
        "AMI_PORT": port,
        "AMI_PING_INTERVAL": 0.2,
        "AMI_ACTION_TIMEOUT": 0.3,
        "AMI_RECONNECT_MIN": 0.05,
        "AMI_RECONNECT_MAX": 0.2,
    }
    values.update(overrides)
    return TelephonySettings(**values)


class Sink:
    """Collects what the listener delivers."""

    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []
        self.arrivals: list[float] = []
        self.snapshots: list[list[dict[str, str]]] = []
        self.states: list[tuple[AmiState, str]] = []
        self.fail_on: Callable[[dict[str, str]], bool] = lambda e: False

    async def on_event(self, event: dict[str, str], arrival: float) -> None:
        self.events.append(event)
        self.arrivals.append(arrival)
        if self.fail_on(event):
            raise RuntimeError("handler bug")

    async def on_connected(self, channels: list[dict[str, str]]) -> None:
        self.snapshots.append(channels)

    def on_state(self, state: AmiState, detail: str) -> None:
        self.states.append((state, detail))

    def played(self) -> list[dict[str, str]]:
        """Events from the recording, without the server's per-login FullyBooted."""
        return [e for e in self.events if e.get("Event") != "FullyBooted"]


async def until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    """Poll a condition on state the test does not own (no Event to wait on)."""
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.005)


@pytest.fixture
async def server() -> AsyncIterator[ReplayServer]:
    async with replay_server() as srv:
        yield srv


@pytest.fixture
async def sink() -> Sink:
    return Sink()


@pytest.fixture
async def listener(server: ReplayServer, sink: Sink) -> AsyncIterator[AmiListener]:
    lst = AmiListener(make_settings(server.port), sink.on_event, sink.on_connected, sink.on_state)
    await lst.start()
    async with asyncio.timeout(2):
        await lst.wait_connected()
    yield lst
    await lst.close(drain_timeout=1)


def recorded(path: Path) -> list[dict[str, str]]:
    return [dict(e) for e in load_recording(path)]


def event_bytes(headers: list[tuple[str, str]]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode()


async def play_all(server: ReplayServer, path: Path, speed: float = 0, **kw: Any) -> None:
    await server.play(path, speed=speed, renumber=False, shift_to_now=False, **kw)
    async with asyncio.timeout(5):
        await server.wait_played()


# -------------------------------------------------------------------------------------------


async def test_recording_delivered_whole_and_in_order(
    server: ReplayServer, listener: AmiListener, sink: Sink
) -> None:
    expected = recorded(CLICK)
    await play_all(server, CLICK)
    await until(lambda: len(sink.played()) == len(expected))
    assert sink.played() == expected
    assert sink.events[0]["Event"] == "FullyBooted"
    assert sink.arrivals == sorted(sink.arrivals)
    assert sink.snapshots == [[]]  # on_connected after login, with CoreShowChannels' result


async def test_fault1_utf8_character_split_across_reads(
    server: ReplayServer, listener: AmiListener, sink: Sink
) -> None:
    data = event_bytes(
        [("Event", "NewCallerid"), ("Privilege", "call,all"), ("CallerIDName", "Иван Петров")]
    )
    cut = data.index("в".encode()) + 1  # between the two bytes of "в"
    await server.inject(data, split_at=[cut])
    # And a split between the \r and \n of the blank line that ends a message.
    await server.inject(data, split_at=[len(data) - 1])
    await until(lambda: len(sink.played()) == 2)
    assert [e["CallerIDName"] for e in sink.played()] == ["Иван Петров", "Иван Петров"]


async def test_fault2_empty_last_header_value_kept(
    server: ReplayServer, listener: AmiListener, sink: Sink
) -> None:
    await server.inject(
        b"Event: VarSet\r\nChannel: PJSIP/101-00000001\r\nVariable: X\r\nValue: \r\n\r\n"
    )
    await until(lambda: len(sink.played()) == 1)
    assert sink.played()[0]["Value"] == ""
    assert parse_message(b"Event: VarSet\r\nValue: ")["Value"] == ""


async def test_fault3_handler_exception_does_not_cost_connection_or_events(
    server: ReplayServer, listener: AmiListener, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    sink.fail_on = lambda e: e.get("Uniqueid") == "2"
    batch = b"".join(
        event_bytes([("Event", "Newchannel"), ("Uniqueid", str(i))]) for i in range(1, 4)
    )
    with caplog.at_level(logging.ERROR, logger="telephony.ami_listener"):
        await server.inject(batch)  # one write: the failing event sits in the middle of a read
        await until(lambda: len(sink.played()) == 3)
    assert [e["Uniqueid"] for e in sink.played()] == ["1", "2", "3"]
    assert "event handler failed" in caplog.text
    await asyncio.sleep(0.05)
    assert server.connections == 1 and listener.connections == 1 and listener.connected


async def test_fault4_action_pending_at_disconnect_fails_and_is_not_resent(
    server: ReplayServer, listener: AmiListener
) -> None:
    server.freeze_clients()  # the action reaches the server, no reply comes back
    originate = asyncio.create_task(
        listener.send_action(
            {"Action": "Originate", "Channel": "PJSIP/101", "Exten": "79161234567"}, timeout=5
        )
    )
    await until(lambda: len(server.originates) == 1)
    server.drop_clients()
    with pytest.raises(AmiConnectionLost, match="will not be re-sent"):
        await originate
    await asyncio.wait_for(server.wait_logins(2), 2)
    await asyncio.sleep(0.3)  # panoramisk re-sends after the next FullyBooted
    assert len(server.originates) == 1


async def test_fault5_originate_without_async_is_sent_async(
    server: ReplayServer, listener: AmiListener, sink: Sink
) -> None:
    replies = await listener.send_action(
        {"Action": "Originate", "Channel": "PJSIP/101", "Context": "crm-outbound", "Exten": "1"}
    )
    assert server.originates[0]["Async"] == "true"
    assert [r.get("Event", r.get("Response")) for r in replies] == ["Success", "OriginateResponse"]
    # panoramisk's Action.multi raised KeyError('async') inside the parser; ours does not.
    action = PendingAction({"Action": "Originate"})
    action.responses.append({"Response": "Success", "Message": "Originate successfully queued"})
    assert action.multi is False
    assert listener.connections == 1 and listener.connected


async def test_fault6_refused_credentials_are_reported_and_retried_slowly(
    server: ReplayServer, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(server.port, AMI_SECRET="wrong", AMI_RECONNECT_MAX=0.4)
    lst = AmiListener(settings, sink.on_event, sink.on_connected, sink.on_state)
    with caplog.at_level(logging.ERROR, logger="telephony.ami_listener"):
        await lst.start()
        await asyncio.sleep(0.8)
        await lst.close()
    failures = [d for s, d in sink.states if s is AmiState.AUTH_FAILED]
    assert failures and "Authentication failed" in failures[0]
    assert "auth_failed" in caplog.text and "login refused" in caplog.text
    # Retried, visibly, with a growing delay (0.05, 0.1, 0.2, 0.4): a handful, not hundreds.
    assert 2 <= server.connections <= 6
    assert server.logins == 0 and lst.connections == 0 and not sink.snapshots


async def test_fault7_close_cancels_a_scheduled_reconnect(sink: Sink) -> None:
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lst = AmiListener(
        make_settings(port, AMI_RECONNECT_MIN=0.3), sink.on_event, on_state=sink.on_state
    )
    await lst.start()
    await until(lambda: any(s is AmiState.DISCONNECTED for s, _ in sink.states))
    await lst.close()  # a reconnect is now scheduled 0.3 s ahead
    srv = ReplayServer(port=port)
    await srv.start()
    try:
        await asyncio.sleep(0.6)
        assert srv.connections == 0
        assert lst.state is AmiState.CLOSED
    finally:
        await srv.close()


async def test_fault8_half_open_connection_is_noticed_and_replaced(
    server: ReplayServer, listener: AmiListener, sink: Sink
) -> None:
    server.freeze_clients()  # socket open, nothing answered: a half-open TCP link
    # Ping every 0.2 s, 0.3 s to answer, 0.05 s backoff: the unanswered ping, not TCP, ends it
    # (a generous bound: a loaded machine must not fail this, a link never noticed still does)
    await asyncio.wait_for(server.wait_logins(2), 30)
    await until(lambda: listener.connected)
    assert listener.connections == 2
    assert [s for s, _ in sink.states].count(AmiState.CONNECTED) == 2
    assert len(sink.snapshots) == 2


async def test_fault9_multi_response_events_come_back_as_a_list(
    server: ReplayServer, listener: AmiListener, sink: Sink, tmp_path: Path
) -> None:
    # Play the first half of a call, so that channels are live.
    chunks = INBOUND.read_bytes().split(b"\r\n\r\n")
    half = tmp_path / "half.ami"
    half.write_bytes(b"\r\n\r\n".join(chunks[:40]) + b"\r\n\r\n")
    await play_all(server, half)
    replies = await listener.send_action({"Action": "CoreShowChannels"})
    assert replies[0]["Response"] == "Success"
    listed = [r for r in replies if r.get("Event") == "CoreShowChannel"]
    assert listed and {r["Channel"] for r in listed} == set(server.live_channels)
    assert replies[-1]["Event"] == "CoreShowChannelsComplete"
    assert replies[-1]["ListItems"] == str(len(listed))
    # A list's items go to the caller only; a broadcast reply (OriginateResponse) to both.
    result = await listener.send_action({"Action": "Originate", "Channel": "PJSIP/101"})
    await until(lambda: any(e.get("Event") == "OriginateResponse" for e in sink.events))
    assert not any(e.get("Event", "").startswith("CoreShowChannel") for e in sink.events)
    assert result[1]["Event"] == "OriginateResponse"


async def test_fault10_send_action_times_out(server: ReplayServer, listener: AmiListener) -> None:
    server.answer_pings = False
    # its own timeout ends it (AmiActionTimeout), not the outer guard (TimeoutError)
    with pytest.raises(AmiActionTimeout, match="Ping"):
        await asyncio.wait_for(listener.send_action({"Action": "Ping"}, timeout=0.1), 30)
    assert listener._protocol is not None and not listener._protocol.responses


async def test_fault11_float_reconnect_delays_are_honoured(sink: Sink) -> None:
    accepted: list[float] = []

    async def slam(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(time.monotonic())
        writer.close()  # Asterisk restarting: accept, then close before the banner

    srv = await asyncio.start_server(slam, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    lst = AmiListener(
        make_settings(port, AMI_RECONNECT_MIN=0.15, AMI_RECONNECT_MAX=1.0), sink.on_event
    )
    await lst.start()
    try:
        await until(lambda: len(accepted) >= 3, within=2)
    finally:
        await lst.close()
        srv.close()
    gaps = [b - a for a, b in itertools.pairwise(accepted)]
    # panoramisk's int(0.15) == 0 would reconnect at once; ours waits 0.15 s, then 0.3 s.
    assert 0.14 <= gaps[0] < 0.6
    assert 0.28 <= gaps[1] < 0.9


async def test_fault12_panoramisk_testing_not_imported() -> None:
    import panoramisk.utils

    assert "panoramisk.testing" not in sys.modules
    assert panoramisk.utils.EOL == "\r\n"


# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"this line has no colon\r\nEvent: Newchannel\r\n\r\n", id="no-colon"),
        pytest.param(bytes(range(256)) + b"\r\n\r\n", id="binary"),
        pytest.param(b"Event: Huge\r\nX: " + b"x" * 1_048_576 + b"\r\n\r\n", id="1MB-line"),
        pytest.param(b"Channel: PJSIP/101\r\nUniqueid: 1.1\r\n\r\n", id="no-event-header"),
        pytest.param(b"\xff\xfe\x00\x00" * 10 + b"\n\n", id="bare-lf-garbage"),
    ],
)
async def test_malformed_input_is_skipped_without_losing_neighbours(
    server: ReplayServer, listener: AmiListener, sink: Sink, garbage: bytes
) -> None:
    expected = recorded(CLICK)
    for n in (1, 10, 50):  # garbage between recorded events, at several points
        server.inject_after(n, garbage)
    await play_all(server, CLICK)
    await until(lambda: len(sink.played()) >= len(expected))
    await asyncio.sleep(0.05)
    assert sink.played() == expected
    assert listener.connections == 1 and listener.connected


async def test_message_cut_in_half_by_a_disconnect_is_dropped(
    server: ReplayServer, listener: AmiListener, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="telephony.ami_listener"):
        await server.inject(b"Event: Newchannel\r\nChannel: PJSIP/101-0000")
        server.drop_clients()
        await asyncio.wait_for(server.wait_logins(2), 2)
    expected = recorded(CLICK)
    await play_all(server, CLICK)
    await until(lambda: len(sink.played()) == len(expected))
    assert sink.played() == expected
    assert "connection lost inside a message" in caplog.text


async def test_cut_mid_recording_resumes_without_loss_or_duplicates(
    server: ReplayServer, listener: AmiListener, sink: Sink
) -> None:
    expected = recorded(INBOUND)
    server.cut_after(30)
    await play_all(server, INBOUND, speed=20)  # 10 s of calls in 0.5 s
    await until(lambda: len(sink.played()) >= len(expected))
    await asyncio.sleep(0.05)
    assert sink.played() == expected
    assert server.logins == 2 and listener.connections == 2
    # The reconnect's snapshot lists the calls in progress at the cut, for reconciliation.
    assert sink.snapshots[0] == [] and len(sink.snapshots[1]) > 0
    assert [e.get("Event") for e in sink.events].count("FullyBooted") == 2


async def test_slow_consumer_gets_back_pressure_not_loss(
    server: ReplayServer, caplog: pytest.LogCaptureFixture
) -> None:
    sink = Sink()

    async def slow(event: dict[str, str], arrival: float) -> None:
        await asyncio.sleep(0.001)
        await sink.on_event(event, arrival)

    lst = AmiListener(make_settings(server.port, AMI_PING_INTERVAL=0.05), slow, queue_size=4)
    await lst.start()
    try:
        with caplog.at_level(logging.WARNING, logger="telephony.ami_listener"):
            async with asyncio.timeout(2):
                await lst.wait_connected()
            expected = recorded(INBOUND)
            await play_all(server, INBOUND)
            await until(lambda: len(sink.played()) == len(expected))
        assert sink.played() == expected
        assert "pausing reads" in caplog.text
        assert lst.connections == 1  # paused reads are not mistaken for a dead link
    finally:
        await lst.close()


async def test_send_action_while_disconnected_raises_without_sending(sink: Sink) -> None:
    lst = AmiListener(make_settings(1), sink.on_event)
    with pytest.raises(AmiNotConnected):
        await lst.send_action({"Action": "Ping"})


async def test_state_changes_are_logged_with_fields(
    server: ReplayServer, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="telephony.ami_listener"):
        lst = AmiListener(make_settings(server.port), sink.on_event, on_state=sink.on_state)
        await lst.start()
        async with asyncio.timeout(2):
            await lst.wait_connected()
        await lst.close()
    states = [r.ami_state for r in caplog.records if hasattr(r, "ami_state")]
    assert states == ["connecting", "connected", "closed"]
    assert [s for s, _ in sink.states] == [
        AmiState.CONNECTING,
        AmiState.CONNECTED,
        AmiState.CLOSED,
    ]


async def test_asterisk_restart_is_survived(sink: Sink) -> None:
    first = ReplayServer()
    await first.start()
    port = first.port
    lst = AmiListener(make_settings(port), sink.on_event, sink.on_connected, sink.on_state)
    await lst.start()
    try:
        async with asyncio.timeout(2):
            await lst.wait_connected()
        await until(lambda: len(sink.snapshots) == 1)
        await first.inject(event_bytes([("Event", "Shutdown"), ("Shutdown", "Cleanly")]))
        await first.close()  # connections reset, then refused while Asterisk is down
        await until(lambda: any(s is AmiState.DISCONNECTED for s, _ in sink.states))
        await asyncio.sleep(0.3)
        second = ReplayServer(port=port)
        await second.start()
        try:
            await asyncio.wait_for(second.wait_logins(1), 2)
            await until(lambda: len(sink.snapshots) == 2)
            assert lst.connections == 2
            assert any(e.get("Event") == "Shutdown" for e in sink.events)
            refused = [d for s, d in sink.states if s is AmiState.DISCONNECTED]
            assert any("refused" in d for d in refused)
        finally:
            await second.close()
    finally:
        await lst.close()


async def test_handlers_by_event_name_run_after_on_event_in_stream_order(
    server: ReplayServer, listener: AmiListener, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[str, str, int]] = []

    async def on_hangup(event: dict[str, str], arrival: float) -> None:
        # on_event has already had this very event
        seen.append(("hangup", event["Uniqueid"], len(sink.events)))
        if sum(k == "hangup" for k, _, _ in seen) == 1:
            raise RuntimeError("a handler's bug")

    async def on_dial(event: dict[str, str], arrival: float) -> None:
        seen.append(("dial", event["DestChannel"], len(sink.events)))

    listener.on("Hangup", on_hangup)
    listener.on("DialBegin", on_dial)
    expected = recorded(INBOUND)
    with caplog.at_level(logging.ERROR, logger="telephony.ami_listener"):
        await play_all(server, INBOUND)
        await until(lambda: len(sink.played()) == len(expected))
        await until(
            lambda: len(seen) == sum(e["Event"] in ("Hangup", "DialBegin") for e in expected)
        )
    assert sink.played() == expected  # a handler's exception costs no event
    assert "Hangup handler failed" in caplog.text
    order = [e for e in sink.events if e.get("Event") in ("Hangup", "DialBegin")]
    assert [(k, v) for k, v, _ in seen] == [
        ("hangup", e["Uniqueid"]) if e["Event"] == "Hangup" else ("dial", e["DestChannel"])
        for e in order
    ]
    positions = [sink.events.index(e) + 1 for e in order]
    assert [delivered for _, _, delivered in seen] == positions


async def test_a_lost_connection_is_told_after_its_last_event_and_before_the_next_snapshot(
    server: ReplayServer,
) -> None:
    """In stream order: what the old connection said, its loss, the new one's snapshot; closing
    the listener loses its connection too."""
    told: list[str] = []

    async def on_event(event: dict[str, str], arrival: float) -> None:
        if event.get("Event") == "Shutdown":
            told.append("last event")

    async def on_connected(channels: list[dict[str, str]]) -> None:
        told.append("snapshot")

    async def on_lost() -> None:
        told.append("lost")

    lst = AmiListener(make_settings(server.port), on_event, on_connected, on_lost=on_lost)
    await lst.start()
    try:
        await until(lambda: told == ["snapshot"])
        await server.inject(event_bytes([("Event", "Shutdown"), ("Shutdown", "Cleanly")]))
        server.drop_clients()
        await asyncio.wait_for(server.wait_logins(2), 30)  # (bounds a failure only)
        await until(lambda: len(told) == 4, within=30)
    finally:
        await lst.close()
    assert told == ["snapshot", "last event", "lost", "snapshot", "lost"]
