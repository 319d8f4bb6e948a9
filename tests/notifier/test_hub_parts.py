"""The hub's pure parts, without a database or a socket: the NOTIFY body and the fan-out."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from notifier.channels import Message
from notifier.hub.fanout import Fanout
from notifier.hub.frames import Envelope, encode_frame
from notifier.hub.notify import CATCH_UP, parse_body, seqs_of
from notifier.hub.subscriber import Subscriber

AT = datetime(2026, 1, 2, 10, 0, tzinfo=UTC)


def env(seq: int, channel: str = "ext:101", text: str = "x") -> Envelope:
    frame = encode_frame(seq, channel, "call.ringing", f'{{"text":"{text}"}}', AT)
    return Envelope(seq, channel, "call.ringing", frame)


def test_a_body_reads_back_as_its_frames_or_says_to_read_the_log() -> None:
    # the bodies the appending statement sends (made and heard for real in test_hub.py)
    batch = [env(7), env(8, "supervisors")]
    assert parse_body("\n".join(f"{e.seq}\t{e.frame}" for e in batch)) == batch
    assert parse_body("8\n9") is None and seqs_of("8\n9") == [8, 9]
    assert parse_body(CATCH_UP) is None


def test_each_seq_is_delivered_once_in_order_to_its_channel() -> None:
    fanout = Fanout(last_seq=0, queue_size=8, flush_seconds=0.25)
    mine, other = fanout.subscribe({"ext:101"}), fanout.subscribe({"ext:102"})
    mine.go_live(0)
    other.go_live(0)
    for e in (env(1), env(2), env(1), env(2), env(3, "ext:102")):
        fanout.deliver(e)
    assert (mine.pending, other.pending) == (2, 1)
    assert fanout.last_seq == 3 and fanout.subscriber_count() == 2
    fanout.unsubscribe(mine)
    fanout.deliver(env(4))
    assert mine.pending == 2 and fanout.subscriber_count() == 1
    fanout.close_all("server shutting down")
    assert other.closed_reason == "server shutting down"


async def test_a_board_gets_a_broadcast_after_quiet_at_once_then_a_batch_per_interval() -> None:
    # an interval far longer than the test: what leaves early left without waiting for it
    sub = Subscriber(frozenset({"supervisors", "ext:101"}), limit=8, flush_seconds=3600.0)
    sub.go_live(0)

    async def seqs() -> list[int]:
        async with asyncio.timeout(5):
            return [json.loads(f)["seq"] for f in await sub.next_frames()]

    sub.offer(env(1, "supervisors"))
    assert await seqs() == [1]  # the board follows a call without a fixed delay
    sub.offer(env(2, "supervisors"))
    sub.offer(env(3, "supervisors"))
    with pytest.raises(TimeoutError):  # a second write within the interval waits for it
        async with asyncio.timeout(0.3):
            await sub.next_frames()
    sub.offer(env(4))  # a screen-pop goes at once, with the broadcasts before it, in order
    assert await seqs() == [2, 3, 4]


async def test_a_shown_message_reaches_live_sockets_unnumbered_and_its_copy_skips_them() -> None:
    fanout = Fanout(last_seq=0, queue_size=8, flush_seconds=0.25)
    live, replaying = fanout.subscribe({"ext:101"}), fanout.subscribe({"ext:101"})
    live.go_live(0)
    pop = Message("ext:101", "call.ringing", {"text": "x"})
    shown = fanout.show([pop, Message("ext:102", "call.ringing", {})])
    assert shown == [frozenset({live}), frozenset()]  # nobody here listens to ext:102
    async with asyncio.timeout(5):
        (frame,) = await live.next_frames()
    assert json.loads(frame) | {"at": None} == {
        "channel": "ext:101",
        "type": "call.ringing",
        "payload": {"text": "x"},
        "at": None,
    }
    assert replaying.pending == 0  # still replaying: it gets the numbered copy in its turn
    fanout.expect([env(1), env(2, "ext:102")], shown)
    assert fanout._shown == {1: frozenset({live})}
    fanout.deliver(env(1))
    fanout.deliver(env(2, "ext:102"))
    assert live.pending == 0
    replaying.go_live(0)
    assert replaying.pending == 1
    fanout.deliver(env(3))
    assert (live.pending, replaying.pending) == (1, 2)
    async with asyncio.timeout(5):
        assert [json.loads(f)["seq"] for f in await live.next_frames()] == [3]


async def test_a_shown_number_that_is_never_delivered_is_forgotten() -> None:
    fanout = Fanout(last_seq=10, queue_size=8, flush_seconds=0.25)
    sub = fanout.subscribe({"ext:101"})
    sub.go_live(0)
    pop = Message("ext:101", "call.ringing", {})
    # numbered at 5: a resync had already passed it (never delivered here), so not kept
    fanout.expect([env(5)], fanout.show([pop]))
    assert fanout._shown == {}
    fanout.expect([env(12)], fanout.show([pop]))
    fanout.deliver(env(11))
    assert list(fanout._shown) == [12]
    fanout.deliver(env(13))  # 12 is passed over, by a skip of the numbering
    assert fanout._shown == {}
    # nothing stale holds the next pop back, nor keeps a number from the socket
    assert fanout.show([pop]) == [frozenset({sub})]
    async with asyncio.timeout(5):
        frames = [json.loads(f) for f in await sub.next_frames()]
    assert [f.get("seq") for f in frames] == [None, None, 11, 13, None]


async def test_while_a_shown_message_waits_for_its_number_the_next_is_shown_to_nobody() -> None:
    # its numbered copy follows another instance's message not delivered here yet: a socket
    # that was replaying when it was shown must get it before anything newer
    fanout = Fanout(last_seq=0, queue_size=8, flush_seconds=0.25)
    live, replaying = fanout.subscribe({"ext:101"}), fanout.subscribe({"ext:101"})
    live.go_live(0)
    ring, opened = (
        Message("ext:101", "call.ringing", {}),
        Message("ext:101", "call.card_opened", {}),
    )
    fanout.expect([env(2)], fanout.show([ring]))
    replaying.go_live(0)
    assert fanout.show([opened]) == [frozenset()]  # to be numbered and delivered in order
    fanout.deliver(env(1))
    fanout.deliver(env(2))
    fanout.deliver(env(3, text="opened"))
    assert (live.pending, replaying.pending) == (3, 3)  # each: 1, 2 (shown or numbered), 3
    async with asyncio.timeout(5):
        assert [json.loads(f)["seq"] for f in await replaying.next_frames()] == [1, 2, 3]
    assert fanout.show([opened]) == [frozenset({live, replaying})]  # all delivered: shown again
