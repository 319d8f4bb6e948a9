"""Recorded AMI traffic for tests: locate the recordings, split them into messages."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from telephony.ami_wire import AmiEvent, AmiFramer, AmiResponse, Banner, parse_message, split_frames
from telephony.testing.replay import ReplayServer
from tests.conftest import RECORDINGS

AMI_DIR = RECORDINGS


def recordings(*, mid_call: bool = False) -> list[str]:
    """Names (without extension) of the recordings that have a truth file: those that hold
    whole calls, or (``mid_call``) those made by a client that connected while a call was up,
    which begin with its CoreShowChannels answer (truth key ``service_connected_at``)."""
    names = sorted(p.name.removesuffix(".truth.json") for p in AMI_DIR.glob("*.truth.json"))
    return [n for n in names if _starts_mid_call(n) == mid_call]


def _starts_mid_call(name: str) -> bool:
    return any("service_connected_at" in call for call in read_truth(name)["calls"])


def split_messages(data: bytes) -> list[bytes]:
    """Split an AMI byte stream into message blocks, as the listener frames it (``\\r\\n`` or
    bare ``\\n`` line ends; a blank line ends each message). The login banner stays glued to
    the first block."""
    frames, rest = split_frames(data)
    return [block for block in [*frames, rest] if block.strip()]


def parse_stream(data: bytes) -> list[AmiEvent | AmiResponse]:
    """Every message of an AMI byte stream, as the listener reads it: banner first (if any),
    malformed messages logged and skipped."""
    framer = AmiFramer(parse_message)
    return [m for m in framer.feed(data + b"\r\n\r\n") if not isinstance(m, Banner)]


def read_messages(name: str) -> list[bytes]:
    return split_messages((AMI_DIR / f"{name}.ami").read_bytes())


def read_events(name: str) -> list[dict[str, str]]:
    """Every message of a recording (responses included, as on the wire), as plain dicts a
    test may change."""
    return [dict(m) for m in parse_stream((AMI_DIR / f"{name}.ami").read_bytes())]


def read_truth(name: str) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads((AMI_DIR / f"{name}.truth.json").read_text())
    return truth


def arrival_times(events: Iterable[dict[str, str]], start: float = 1_000.0) -> list[float]:
    """Arrival time per event: its Timestamp when present, else 1 ms after the previous one."""
    times: list[float] = []
    last = start
    for event in events:
        stamp = event.get("Timestamp")
        last = float(stamp) if stamp else last + 0.001
        times.append(last)
    return times


def split_recording(
    name: str, event: str, folder: Path, *, containing: str = ""
) -> tuple[Path, Path]:
    """The recording cut just after its first `event` (that also contains `containing`, when
    given) (head.ami) and the rest of it (tail.ami).

    Played one after the other without renumbering or shifting times, they are the recording:
    a test can look at a call in the middle of it.
    """
    messages = (AMI_DIR / f"{name}.ami").read_bytes().split(b"\r\n\r\n")
    cut = next(
        i
        for i, m in enumerate(messages)
        if f"Event: {event}\r\n".encode() in m and containing.encode() in m
    )
    head, tail = folder / f"{name}.head.ami", folder / f"{name}.tail.ami"
    head.write_bytes(b"\r\n\r\n".join(messages[: cut + 1]) + b"\r\n\r\n")
    tail.write_bytes(b"\r\n\r\n".join(messages[cut + 1 :]))
    return head, tail


@asynccontextmanager
async def replay_server(**options: Any) -> AsyncIterator[ReplayServer]:
    """A ReplayServer (`options` as its own) listening, closed after."""
    server = ReplayServer(**options)
    await server.start()
    try:
        yield server
    finally:
        await server.close()
