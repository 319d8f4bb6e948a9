"""Pure AMI field helpers."""

from __future__ import annotations

import re

import pytest

from telephony.ami_fields import (
    agent_extension,
    channel_base,
    compile_agent_pattern,
    duration_seconds,
    event_time,
    known,
    ring_time_seconds,
    uniqueid_before,
    uniqueid_key,
)
from telephony.settings import TelephonySettings
from tests.telephony.helpers import read_events, recordings, split_messages

DEFAULT_PATTERN = compile_agent_pattern(TelephonySettings().agent_channel_pattern)


def test_split_messages_gives_every_message_of_a_recording() -> None:
    for name in recordings():
        events = read_events(name)
        # The banner is read first; the login response, then every other message is one event.
        assert events[0]["Response"] == "Success"
        assert all("Event" in e for e in events[1:])
    assert split_messages(b"A: 1\r\n\r\nB: 2\r\n\r\n\r\n") == [b"A: 1", b"B: 2"]
    assert split_messages(b"A: 1\n\nB: 2") == [b"A: 1", b"B: 2"]


def test_event_time_prefers_the_timestamp_header() -> None:
    assert event_time({"Timestamp": "1795570489.917737"}, 5.0) == 1795570489.917737
    assert event_time({}, 5.0) == 5.0
    assert event_time({"Timestamp": ""}, 5.0) == 5.0
    assert event_time({"Timestamp": "garbage"}, 5.0) == 5.0


@pytest.mark.parametrize(
    ("channel", "extension"),
    [
        ("PJSIP/101-0000001", "101"),
        ("SIP/101-0000abcd", "101"),
        ("IAX2/2040-12345", "2040"),
        ("Local/101@agent-phones-00000001;1", "101"),
        ("Local/101@agent-phones-00000001;2", "101"),
        # A queue member interface: only matches because "agent-phones" holds a hyphen.
        ("Local/101@agent-phones/n", "101"),
        ("PJSIP/trunk-00000001", None),
        ("Local/s@caller-sim-00000000;1", None),
        ("Local/79161234567@pstn-sim-00000001;1", None),
        ("DAHDI/1-1", None),
    ],
)
def test_default_agent_pattern(channel: str, extension: str | None) -> None:
    assert agent_extension(channel, DEFAULT_PATTERN) == extension


def test_agent_pattern_must_name_ext() -> None:
    assert compile_agent_pattern(r"^PJSIP/(?P<ext>\d+)-").pattern == r"^PJSIP/(?P<ext>\d+)-"
    with pytest.raises(ValueError):
        compile_agent_pattern(r"^PJSIP/(\d+)-")
    with pytest.raises(re.error):
        compile_agent_pattern(r"^PJSIP/(?P<ext>\d+-")


def test_channel_base_joins_local_halves() -> None:
    assert channel_base("Local/101@agent-phones-00000001;1") == "Local/101@agent-phones-00000001"
    assert channel_base("Local/101@agent-phones-00000001;2") == "Local/101@agent-phones-00000001"
    assert channel_base("PJSIP/101-00000001") == "PJSIP/101-00000001"
    assert channel_base(";1") == ";1"


def test_uniqueids_compare_as_numbers() -> None:
    assert uniqueid_before("1795570415.98", "1795570416.102")
    assert uniqueid_before("1795570416.98", "1795570416.102")  # as strings it is the other way
    assert not uniqueid_before("1795570416.102", "1795570416.98")
    assert uniqueid_key("1795570416") == (1795570416, 0)
    assert uniqueid_key("garbage") == (0, 0)
    ids = ["1795570416.102", "1795570416.98", "1795570415.99"]
    assert sorted(ids, key=uniqueid_key) == ["1795570415.99", "1795570416.98", "1795570416.102"]


def test_known_drops_unknown_caller_id() -> None:
    assert known("<unknown>") is None
    assert known("") is None
    assert known(None) is None
    assert known("+79161234567") == "+79161234567"


def test_ring_time_is_milliseconds_and_duration_is_hms() -> None:
    assert ring_time_seconds("10000") == 10.0
    assert duration_seconds("00:01:05") == 65.0
    assert duration_seconds("01:00:00") == 3600.0
    assert duration_seconds("") == 0.0
    assert duration_seconds("1:xx") == 0.0
