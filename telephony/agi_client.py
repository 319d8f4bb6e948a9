"""Asterisk's side of a FastAGI conversation, spoken as res_agi.c speaks it.

`crm-telephony check` asks the router as the PBX would with it; telephony.testing.agi_caller (the
demo PBX, the tests and the bench) builds on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from telephony.agi import OK_REPLY


def parse_set_variable(line: str) -> tuple[str, str] | None:
    """`SET VARIABLE CRM_TARGET "101"` -> ("CRM_TARGET", "101"); other commands -> None."""
    prefix = "SET VARIABLE "
    if not line.startswith(prefix):
        return None
    name, _, value = line[len(prefix) :].partition(" ")
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return name, value


class CommandsAheadOfTurn(RuntimeError):
    """The server wrote a command before the previous one was answered: Asterisk runs such a
    command only when the server closes the socket, and the call waits in silence until then."""

    def __init__(self, in_turn: list[str], late: list[str]) -> None:
        super().__init__(f"commands seen only when the socket closed: {late} (after {in_turn})")
        self.in_turn = in_turn
        self.late = late


async def converse(
    host: str,
    port: int,
    request: bytes,
    replies: list[bytes] | None = None,
    *,
    within: float = 3.0,
) -> list[str]:
    """One FastAGI conversation as Asterisk has it: send `request` (the environment block),
    answer each command line (`replies` in turn, then `200 result=1`) until the server closes;
    the commands received.

    Read as res_agi.c reads: fgets on a buffered stream, a poll of the socket between commands.
    Each time the socket turns readable one line is taken and answered; lines that came in the
    same read stay in the buffer, unseen, until the socket is readable again, which for a server
    waiting on its reply is only when it closes. Such a conversation raises CommandsAheadOfTurn.
    Raises OSError/TimeoutError as a PBX would see them."""
    replies = list(replies or ())
    reader, writer = await asyncio.open_connection(host, port)
    in_turn: list[str] = []
    buffered = b""  # the stdio buffer: read from the socket, not yet seen by Asterisk
    try:
        writer.write(request)
        async with asyncio.timeout(within):
            while data := await reader.read(4096):  # poll(): readable
                buffered += data
                while b"\n" not in buffered:  # fgets blocks until it has a whole line
                    more = await reader.read(4096)
                    if not more:
                        break
                    buffered += more
                line, _, buffered = buffered.partition(b"\n")
                in_turn.append(line.decode("utf-8", "replace").rstrip("\r"))
                writer.write(replies.pop(0) if replies else OK_REPLY)
    finally:
        writer.close()
    late = [x.decode("utf-8", "replace").rstrip("\r") for x in buffered.split(b"\n") if x]
    if late:
        raise CommandsAheadOfTurn(in_turn, late)
    return in_turn


def env_block(env: Mapping[str, str]) -> bytes:
    """`agi_name: value` lines and the blank line that ends them."""
    return "".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n"
