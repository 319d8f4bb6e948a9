"""Click-to-call: ring the agent's phone, then dial the client, through an AMI Originate.

`Originator` is what the web side calls; `AmiOriginator` is the real one. The demo puts a stand-in
behind the same protocol (web/demo_originate.py) that plays a recorded click-to-call.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Protocol

from telephony.ami_listener import AmiActionTimeout, AmiError, AmiEvent, AmiListener, AmiMessage
from telephony.settings import TelephonySettings

logger = logging.getLogger(__name__)

# What Asterisk's OriginateResponse `Reason` means (the last control frame seen on the channel).
ORIGINATE_REASONS = {
    "0": "the agent's phone could not be called (unknown, unregistered or unreachable)",
    "1": "the agent's phone hung up",
    "3": "the agent's phone rang but was not answered",
    "4": "answered",
    "5": "the agent's phone is busy",
    "8": "the agent's phone is congested (channel limit or network)",
}
_SAFE_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class ActionSender(Protocol):
    async def send_action(
        self,
        action: dict[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - mirrors AmiListener.send_action
    ) -> list[AmiMessage]: ...


class Originator(Protocol):
    """Places a click-to-call: ``agent_extension`` rings first, then ``number`` is dialled.

    Returns an id of the attempt once the agent's phone answered; raises OriginateError (or
    ValueError for inputs no dialplan should see) when it did not. The call itself is followed
    by AMI like any other: the pages get its ringing, answer and end from the call tracker.
    """

    async def originate(
        self, *, agent_extension: str, number: str, deal_id: int, user_id: int
    ) -> str: ...


class OriginateError(AmiError):
    """The click-to-call did not connect the agent's phone; ``reason`` says why in plain words."""

    def __init__(self, reason: str, *, action_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.action_id = action_id


def check_originate(
    agent_extension: str, number: str, deal_id: int | str, user_id: int | str
) -> None:
    """ValueError for what must never reach a dialplan (AMI header injection, odd numbers)."""
    if not _SAFE_NUMBER.match(number):
        raise ValueError(f"not a dialable number: {number!r}")
    if not _SAFE_NUMBER.match(agent_extension):
        raise ValueError(f"not an extension: {agent_extension!r}")
    for name, value in (("deal_id", deal_id), ("user_id", user_id)):
        if not _SAFE_VALUE.match(str(value)):
            raise ValueError(f"{name} must be a plain identifier, got {value!r}")


async def originate_call(
    listener: ActionSender,
    *,
    agent_extension: str,
    number: str,
    deal_id: int | str,
    user_id: int | str,
    settings: TelephonySettings,
    caller_id: str | None = None,
    ring_seconds: float = 30.0,
) -> str:
    """Ring ``agent_extension``; when the agent answers, Asterisk dials ``number`` in
    ``settings.originate_context``. Returns the Originate's ActionID once the agent answered.

    Always ``Async: true`` (fault #5, and so that Asterisk reports the outcome in an
    OriginateResponse event, which we wait for). ``CRM_DEAL_ID`` and ``CRM_USER_ID`` are set on
    the channel so the call tracker can log the call on the deal.

    Raises :class:`OriginateError` with a plain reason when Asterisk refuses the action, the
    agent's phone does not answer / is busy / unreachable, or no outcome arrives within
    ``ring_seconds`` plus the action timeout. A lost connection raises AmiConnectionLost: the
    Originate is never re-sent (fault #4), so the client is never rung twice.
    """
    check_originate(agent_extension, number, deal_id, user_id)
    action = {
        "Action": "Originate",
        "Channel": settings.originate_channel.format(ext=agent_extension),
        "Context": settings.originate_context,
        "Exten": number,
        "Priority": "1",
        # The name shows the agent whom the phone is about to call; the number stays the agent's
        # own (it becomes the second leg's caller ID unless the dialplan sets the trunk's).
        "CallerID": caller_id or f'"{number}" <{agent_extension}>',
        "Timeout": str(int(ring_seconds * 1000)),
        "Async": "true",
        "Variable": f"CRM_DEAL_ID={deal_id},CRM_USER_ID={user_id}",
    }
    timeout = ring_seconds + settings.ami_action_timeout
    try:
        replies = await listener.send_action(action, timeout=timeout)
    except AmiActionTimeout as exc:
        raise OriginateError(
            f"no answer from Asterisk about the call to {number} within {timeout:g}s"
        ) from exc
    response = replies[0]
    action_id = response.get("ActionID")
    if response.get("Response") != "Success":
        raise OriginateError(
            f"Asterisk refused the call: {response.get('Message', 'no reason given')}",
            action_id=action_id,
        )
    outcome = next((r for r in replies[1:] if r.get("Event") == "OriginateResponse"), None)
    if outcome is None:
        raise OriginateError("Asterisk queued the call but sent no outcome", action_id=action_id)
    if outcome.get("Response") != "Success":
        reason = outcome.get("Reason", "")
        words = ORIGINATE_REASONS.get(reason, f"reason code {reason or 'unknown'}")
        raise OriginateError(
            f"call to {number} from extension {agent_extension} failed: {words}",
            action_id=action_id,
        )
    logger.info(
        "originate: extension %s answered, dialling %s (deal %s, user %s)",
        agent_extension,
        number,
        deal_id,
        user_id,
        extra={"action_id": action_id, "deal_id": str(deal_id), "user_id": str(user_id)},
    )
    assert action_id is not None
    return action_id


async def _ignore_event(event: AmiEvent, arrival: float) -> None:
    return None


class AmiOriginator:
    """The real click-to-call: an AMI Originate.

    It goes through the AMI connection of the instance that follows the PBX when that is this
    one (``followed`` returns its connected listener); any other instance opens a short
    connection of its own for the action (AMI allows many manager sessions), so any instance
    serves any browser.
    """

    def __init__(
        self,
        settings: TelephonySettings,
        followed: Callable[[], ActionSender | None] = lambda: None,
    ) -> None:
        self._settings = settings
        self._followed = followed

    async def originate(
        self, *, agent_extension: str, number: str, deal_id: int, user_id: int
    ) -> str:
        listener = self._followed()
        if listener is not None:
            return await originate_call(
                listener,
                agent_extension=agent_extension,
                number=number,
                deal_id=deal_id,
                user_id=user_id,
                settings=self._settings,
            )
        check_originate(agent_extension, number, deal_id, user_id)  # before connecting
        transient = AmiListener(self._settings, _ignore_event)
        await transient.start()
        try:
            async with asyncio.timeout(self._settings.ami_action_timeout):
                await transient.wait_connected()
            return await originate_call(
                transient,
                agent_extension=agent_extension,
                number=number,
                deal_id=deal_id,
                user_id=user_id,
                settings=self._settings,
            )
        except TimeoutError:
            raise OriginateError(
                f"cannot reach Asterisk at {self._settings.ami_host}:{self._settings.ami_port} "
                f"({transient.last_error or transient.state})"
            ) from None
        finally:
            await transient.close(drain_timeout=0)
