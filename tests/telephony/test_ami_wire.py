"""The AMI wire layer, byte by byte, without sockets.

``ami_listener_golden.json`` holds, per recording, a digest of every message the listener of
before the wire module (telephony/ami_listener.py at e301d17) parsed from it: the parser that
replaced it must read every recording exactly as it did.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from telephony.ami_wire import AmiEvent, AmiFramer, AmiResponse, Banner, parse_message
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
