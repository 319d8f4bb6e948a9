"""The demo's click-to-call: a real recorded one, played through the demo's replayed PBX.

`asterisk/recordings/click_to_call.ami` is what a real Asterisk 22 sent while extension 101
called 79161234567 for deal 42 (its `.truth.json` says so). Asked to place a call, the demo
renames that recording into the call asked for (the agent's extension, the number, the deal and
user ids) and plays it beside the demo's loop: the service's own listener and call tracker follow
it, and the page sees ringing, answered and ended from real events, as with a PBX.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path

from telephony.originate import check_originate
from telephony.testing.replay import Headers, ReplayServer, load_recording

RECORDING = "click_to_call"
# fields whose digits are ids or clocks, never an extension or a number
_KEPT = ("Timestamp", "EventTV", "SessionTV", "SessionID", "Uniqueid", "Linkedid", "ActionID")
# the recorder's own log-ins: not part of the call
_SKIPPED_EVENTS = frozenset({"SuccessfulAuth", "FullyBooted"})


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """What the recorded click-to-call was, from its .truth.json."""

    agent: str
    number: str
    deal_id: str
    user_id: str

    @classmethod
    def load(cls, truth: Path) -> RecordedCall:
        (call,) = json.loads(truth.read_text())["calls"]
        variables = call["crm_variables"]
        return cls(
            call["agent"],
            call["dialled_number"],
            variables["CRM_DEAL_ID"],
            variables["CRM_USER_ID"],
        )


def _digits(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\d){re.escape(value)}(?!\d)")


def rewrite(
    events: list[Headers],
    recorded: RecordedCall,
    *,
    agent_extension: str,
    number: str,
    deal_id: int,
    user_id: int,
) -> list[Headers]:
    """The recorded call's events as the call asked for: every mention of the recorded agent's
    extension and the dialled number replaced, the CRM variables set to this deal and user."""
    agent, dialled = _digits(recorded.agent), _digits(recorded.number)
    crm = {"CRM_DEAL_ID": str(deal_id), "CRM_USER_ID": str(user_id)}
    out: list[Headers] = []
    for event in events:
        fields = dict(event)
        if fields.get("Event") in _SKIPPED_EVENTS:
            continue
        variable = fields.get("Variable") if fields.get("Event") == "VarSet" else None
        headers: Headers = []
        for name, value in event:
            if name == "Value" and variable in crm:
                value = crm[variable]
            elif not name.endswith(_KEPT):
                value = dialled.sub(number, agent.sub(agent_extension, value))
            headers.append((name, value))
        out.append(headers)
    return out


class ReplayedOriginator:
    """An `Originator` for the demo's replayed PBX (see the module docstring)."""

    def __init__(self, replay: ReplayServer, folder: Path, speed: float = 1.0) -> None:
        self._replay = replay
        self._events = load_recording(folder / f"{RECORDING}.ami")
        self._recorded = RecordedCall.load(folder / f"{RECORDING}.truth.json")
        self._speed = speed
        self._ids = itertools.count(1)
        self._playing: set[asyncio.Task[None]] = set()

    async def originate(
        self, *, agent_extension: str, number: str, deal_id: int, user_id: int
    ) -> str:
        check_originate(agent_extension, number, deal_id, user_id)
        events = rewrite(
            self._events,
            self._recorded,
            agent_extension=agent_extension,
            number=number,
            deal_id=deal_id,
            user_id=user_id,
        )
        task = asyncio.create_task(
            self._replay.play_alongside(events, self._speed), name="demo-click-to-call"
        )
        self._playing.add(task)
        task.add_done_callback(self._playing.discard)
        return f"demo-c2c-{next(self._ids)}"

    async def wait_played(self) -> None:
        """Until every call placed so far has been played (tests)."""
        while self._playing:
            await asyncio.gather(*self._playing, return_exceptions=True)
