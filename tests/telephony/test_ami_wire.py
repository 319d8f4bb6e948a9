"""The AMI wire layer, byte by byte, without sockets.

``ami_listener_golden.json`` holds, per recording, a digest of every message the listener of
before the wire module (telephony/ami_listener.py at e301d17) parsed from it: the parser that
replaced it must read every recording exactly as it did.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import pickle
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from telephony.ami_wire import (
    AmiAction,
    AmiEvent,
    AmiFramer,
    AmiMessage,
    AmiResponse,
    Banner,
    MalformedMessage,
    action_headers,
    parse_action,
    parse_message,
    serialize,
)
from tests.telephony.helpers import AMI_DIR

GOLDEN: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "ami_listener_golden.json").read_text()
)
RECORDINGS = sorted(p.name for p in AMI_DIR.glob("*.ami"))


def digest(messages: Sequence[Mapping[str, str]]) -> str:
    canon = json.dumps(
        [list(m.items()) for m in messages], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canon.encode()).hexdigest()


def parsed(data: bytes, step: int) -> tuple[str | None, list[AmiEvent | AmiResponse]]:
    """The banner's version and every message, the bytes fed ``step`` at a time."""
    framer = AmiFramer(parse_message)
    items = [item for i in range(0, len(data), step) for item in framer.feed(data[i : i + step])]
    assert isinstance(items[0], Banner) and framer.pending == b""
    messages = [m for m in items[1:] if not isinstance(m, Banner)]
    return items[0].version, messages


def test_the_golden_file_covers_every_recording() -> None:
    assert sorted(GOLDEN) == RECORDINGS and len(RECORDINGS) >= 20


@pytest.mark.parametrize("name", RECORDINGS)
@pytest.mark.parametrize("step", [1 << 30, 7])
def test_every_recording_parses_as_the_old_listener_did(name: str, step: int) -> None:
    version, messages = parsed((AMI_DIR / name).read_bytes(), step)
    golden = GOLDEN[name]
    assert (version, len(messages), digest(messages)) == (
        golden["banner"],
        golden["messages"],
        golden["sha256"],
    )


# ------------------------------------------------------------------------------- framing


def feed_in_chunks(data: bytes, sizes: Sequence[int], **kw: Any) -> list[AmiMessage | Banner]:
    framer = AmiFramer(parse_message, **kw)
    out: list[AmiMessage | Banner] = []
    at = 0
    for size in sizes:
        out += framer.feed(data[at : at + size])
        at += size
    out += framer.feed(data[at:])
    return out


def as_lists(items: Sequence[AmiMessage | Banner]) -> list[Any]:
    return [i if isinstance(i, Banner) else (type(i), i.headers) for i in items]


@pytest.mark.parametrize("name", RECORDINGS)
def test_random_split_points_give_the_same_messages(name: str) -> None:
    data = (AMI_DIR / name).read_bytes()
    whole = as_lists(feed_in_chunks(data, []))
    rng = random.Random(f"ami-wire-{name}")  # fixed seed per recording
    for upto in (3, 64, 4096):
        sizes: list[int] = []
        total = 0
        while total < len(data):
            sizes.append(rng.randint(1, upto))
            total += sizes[-1]
        assert as_lists(feed_in_chunks(data, sizes)) == whole


@pytest.mark.parametrize("name", RECORDINGS[:4])
def test_bare_lf_and_mixed_line_ends_read_the_same(name: str) -> None:
    data = (AMI_DIR / name).read_bytes()
    whole = as_lists(feed_in_chunks(data, []))
    assert as_lists(feed_in_chunks(data.replace(b"\r\n", b"\n"), [])) == whole
    # every other message ended by \n\r\n or \r\n\n, bare LF inside some
    messages = data.split(b"\r\n\r\n")
    mixed = b"".join(
        m + (b"\n\r\n", b"\r\n\n", b"\r\n\r\n")[i % 3] for i, m in enumerate(messages[:-1])
    )
    assert as_lists(feed_in_chunks(mixed, [])) == whole


def test_a_character_split_at_every_byte_stays_whole() -> None:
    data = b"Asterisk Call Manager/11.0.0\r\n" + serialize(
        [("Event", "NewCallerid"), ("CallerIDName", "Иван Петров")]
    )
    for cut in range(1, len(data)):
        items = feed_in_chunks(data, [cut])
        assert items == [Banner("11.0.0"), {"Event": "NewCallerid", "CallerIDName": "Иван Петров"}]


def test_the_banner_is_read_first_or_reported_missing() -> None:
    framer = AmiFramer(parse_message)
    assert framer.feed(b"Asterisk Call") == []
    assert framer.feed(b" Manager/11.0.0\r\nEvent: A\r\n\r\n") == [
        Banner("11.0.0"),
        {"Event": "A"},
    ]
    # not an AMI port: Banner(None), and the line is read as (part of) a message
    assert feed_in_chunks(b"Event: A\r\n\r\n", []) == [Banner(None), {"Event": "A"}]
    assert feed_in_chunks(b"HTTP/1.1 400 Bad Request\r\n\r\n", []) == [Banner(None)]
    # a server reads actions: no banner
    server = AmiFramer(parse_action, banner=False)
    [action] = server.feed(b"action: Ping\r\nActionID: 1\r\n\r\n")
    assert isinstance(action, AmiAction) and action.name == "Ping"


GARBAGE = [
    b"this line has no colon\r\nEvent: Newchannel",
    bytes(range(256)),
    b"\xff\xfe\x00\x00" * 10,
    b"Channel: PJSIP/101\r\nUniqueid: 1.1",  # no Event header
    b"Event: Hangup\r\nUniqueid: 1\r\nEvent: Newchannel",  # two messages run together
    b"Event: Bad\r\n  indented: line",
    b"\r\n\r\n\r\n",
]


@pytest.mark.parametrize("garbage", GARBAGE, ids=range(len(GARBAGE)))
def test_malformed_messages_are_skipped_with_a_warning_neighbours_intact(
    garbage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    data = (AMI_DIR / "click_to_call.ami").read_bytes()
    whole = as_lists(feed_in_chunks(data, []))
    messages = data.split(b"\r\n\r\n")
    dirty = b"".join(m + b"\r\n\r\n" + garbage + b"\r\n\r\n" for m in messages[:-1])
    with caplog.at_level(logging.WARNING, logger="telephony.ami_wire"):
        framer = AmiFramer(parse_message)
        items = framer.feed(dirty)
    assert as_lists(items) == whole
    skipped = 0 if not garbage.strip() else len(messages) - 1
    assert framer.skipped == skipped
    assert (caplog.text.count("malformed") == skipped) or (skipped == 0 and not caplog.text)


@pytest.mark.parametrize("step", [1 << 30, 65536, 1000])
def test_an_oversized_message_costs_only_itself_and_one_warning(
    step: int, caplog: pytest.LogCaptureFixture
) -> None:
    huge = b"Event: Huge\r\nX: " + b"x" * 300_000 + b"\r\n\r\n"
    data = b"Event: A\r\n\r\n" + huge + b"Event: B\r\n\r\n"
    with caplog.at_level(logging.WARNING, logger="telephony.ami_wire"):
        framer = AmiFramer(parse_message, banner=False, max_message_bytes=1000)
        items = [m for i in range(0, len(data), step) for m in framer.feed(data[i : i + step])]
    assert items == [{"Event": "A"}, {"Event": "B"}]
    assert framer.skipped == 1 and framer.pending == b""
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "skipping a message" in warning.getMessage()


def test_nul_bytes_are_removed_and_the_message_kept() -> None:
    [event] = AmiFramer(parse_message, banner=False).feed(
        b"Event: NewCallerid\r\nCallerIDName: Iv\x00an\x00\r\nX\x00: 1\r\n\r\n"
    )
    assert event == {"Event": "NewCallerid", "CallerIDName": "Ivan", "X": "1"}


def test_pending_holds_a_message_cut_by_a_disconnect() -> None:
    framer = AmiFramer(parse_message, banner=False)
    assert framer.feed(b"Event: Newchannel\r\nChannel: PJSIP/101-0000") == []
    assert framer.pending == b"Event: Newchannel\r\nChannel: PJSIP/101-0000"


# ------------------------------------------------------------------------------- parsing


def test_values_keep_everything_after_the_one_separator_space() -> None:
    raw = "Event: Newexten\r\nAppData: agi://127.0.0.1:4574/route\r\nAppData2:  two spaces"
    fields = parse_message(raw + "\r\nValue: \r\nNoSpace:x\r\nEmpty:")
    assert fields["AppData"] == "agi://127.0.0.1:4574/route"
    assert fields["AppData2"] == " two spaces"
    assert (fields["Value"], fields["NoSpace"], fields["Empty"]) == ("", "x", "")


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    event = parse_message(b"Event: NewCallerid\r\nCallerIDName: Ivan \xcf\xe5\xf2\xf0\xee\xe2")
    assert event["CallerIDName"] == "Ivan \ufffd\ufffd\ufffd\ufffd\ufffd\ufffd"


def test_repeated_headers_keep_every_value_first_one_mapped() -> None:
    # As Asterisk 22 writes them: main/manager.c action_command, append_channel_vars.
    response = parse_message(
        "Response: Success\r\nActionID: 7\r\nMessage: Command output follows\r\n"
        "Output: line one\r\nOutput: \r\nOutput: read perm: call,agent"
    )
    assert isinstance(response, AmiResponse) and response.name == "Success"
    assert response["Output"] == "line one"
    assert response.get_all("Output") == ("line one", "", "read perm: call,agent")
    assert response.get_all("Nothing") == () and response.action_id == "7"
    event = parse_message(
        "Event: Hangup\r\nChanVariable(PJSIP/101-0000000a): CRM_DEAL_ID=42\r\n"
        "ChanVariable(PJSIP/101-0000000a): CRM_USER_ID=7\r\nChanVariable: A=1\r\n"
        "ChanVariable: B=\r\nActionId: x"
    )
    assert isinstance(event, AmiEvent) and event.name == "Hangup"
    assert event.get_all("ChanVariable(PJSIP/101-0000000a)") == ("CRM_DEAL_ID=42", "CRM_USER_ID=7")
    assert event["ChanVariable"] == "A=1" and event.get_all("ChanVariable") == ("A=1", "B=")
    assert event.action_id == "x"  # Asterisk's own spelling varies
    assert len(event.headers) == 6


def test_legacy_follows_body_lines_are_output() -> None:
    response = parse_message(
        "Response: Follows\r\nPrivilege: Command\r\n          username: crm\r\n"
        "         read perm: all\r\n--END COMMAND--"
    )
    assert response.get_all("Output") == (
        "          username: crm",
        "         read perm: all",
        "--END COMMAND--",
    )


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "empty"),
        (b"no colon", "not a header"),
        (b": value without name", "not a header"),
        (b"Channel: PJSIP/101", "first header"),
        (b"Event: Hangup\nEvent: Other\n", "two Event"),
        (b"Response: Success\r\nResponse: Error", "two Response"),
        (bytes(range(256)), "not a header"),
        (b"Asterisk Call Manager/11.0.0\r\nEvent: VarSet", "not a header"),
    ],
)
def test_malformed_messages_raise_one_error(raw: bytes, why: str) -> None:
    with pytest.raises(MalformedMessage, match=why):
        parse_message(raw)


def test_messages_are_immutable_dicts() -> None:
    event = parse_message(b"Event: VarSet\r\nVariable: X\r\nValue: 1")
    assert event == {"Event": "VarSet", "Variable": "X", "Value": "1"}
    assert {"Event": "VarSet", "Variable": "X", "Value": "1"} == event
    with pytest.raises(TypeError, match="immutable"):
        event["Value"] = "2"
    mutations: list[Callable[[], object]] = [
        lambda: event.update(Value="2"),
        lambda: event.pop("Value"),
        lambda: event.setdefault("New", "1"),
        event.clear,
        event.popitem,
    ]
    for mutate in mutations:
        with pytest.raises(TypeError):
            mutate()
    assert event == {"Event": "VarSet", "Variable": "X", "Value": "1"}
    for twin in (pickle.loads(pickle.dumps(event)), copy.copy(event), copy.deepcopy(event)):
        assert type(twin) is AmiEvent and twin.headers == event.headers
    plain = dict(event)
    plain["Value"] = "2"  # a copy is a plain dict
    assert event["Value"] == "1"


# ------------------------------------------------------------------------------- writing


@pytest.mark.parametrize("name", RECORDINGS)
def test_serialize_writes_what_parse_reads(name: str) -> None:
    data = (AMI_DIR / name).read_bytes()
    messages = [m for m in AmiFramer(parse_message).feed(data) if isinstance(m, AmiMessage)]
    written = b"".join(serialize(m.headers) for m in messages)
    assert written == data[data.index(b"\r\n") + 2 :]  # the recording, byte for byte
    again = [m for m in AmiFramer(parse_message, banner=False).feed(written)]
    assert [m.headers for m in again if isinstance(m, AmiMessage)] == [m.headers for m in messages]


def test_serialize_refuses_line_breaks_and_writes_lists_as_repeats() -> None:
    for bad in ("a\r\nAction: Command", "a\n", "a\r"):
        with pytest.raises(ValueError, match="line break"):
            serialize([("Action", "Originate"), ("Variable", bad)])
        with pytest.raises(ValueError, match="line break"):
            serialize([(bad, "x")])
    fields = {"Action": "Originate", "Variable": ["A=1", "B=2"], "Async": "true"}
    wire = serialize(action_headers(fields))
    assert wire == b"Action: Originate\r\nVariable: A=1\r\nVariable: B=2\r\nAsync: true\r\n\r\n"
    action = parse_action(wire)
    assert action.get_all("Variable") == ("A=1", "B=2") and action.name == "Originate"
