"""The AMI wire layer, byte by byte, without sockets.

``ami_listener_golden.json`` holds, per recording, a digest of every message the listener of
before the wire module (telephony/ami_listener.py at e301d17) parsed from it: the parser that
replaced it must read every recording exactly as it did.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from telephony import ami_listener
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


class _Owner:
    max_message_bytes = ami_listener.DEFAULT_MAX_MESSAGE_BYTES

    def _on_protocol_connected(self, protocol: object) -> None:
        pass

    def _on_protocol_lost(self, protocol: object) -> None:
        pass


class _Transport:
    def write(self, data: bytes) -> None:
        pass


async def parsed(data: bytes, step: int) -> tuple[str | None, list[dict[str, str]]]:
    protocol = ami_listener._AmiProtocol(_Owner())  # type: ignore[arg-type]
    protocol.connection_made(_Transport())  # type: ignore[arg-type]
    seen: list[dict[str, str]] = []
    protocol.handle_message = lambda m, arrival=0.0: seen.append(m)  # type: ignore[method-assign]
    for i in range(0, len(data), step):
        protocol.data_received(data[i : i + step])
    return protocol.version, seen


def test_the_golden_file_covers_every_recording() -> None:
    assert sorted(GOLDEN) == RECORDINGS and len(RECORDINGS) >= 20


@pytest.mark.parametrize("name", RECORDINGS)
@pytest.mark.parametrize("step", [1 << 30, 7])
def test_every_recording_parses_as_the_old_listener_did(name: str, step: int) -> None:
    version, messages = asyncio.run(parsed((AMI_DIR / name).read_bytes(), step))
    golden = GOLDEN[name]
    assert (version, len(messages), digest(messages)) == (
        golden["banner"],
        golden["messages"],
        golden["sha256"],
    )
