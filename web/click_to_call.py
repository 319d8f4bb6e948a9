"""Click-to-call from a card: the manager's phone rings first, then the client's number.

The call goes through the container's `Originator` (telephony/originate.py): the AMI one by
default, the demo's stand-in when the demo put one there. Failures reach the agent's page as
`originate.failed`; the call itself is followed by AMI like any other.
"""

from __future__ import annotations

import logging

from crm_core.db import collect_event, unit_of_work
from crm_core.events.messages import OriginateFailedMessage
from crm_core.events.types import CallEvent
from telephony.ami_listener import AmiError
from telephony.originate import ActionSender, AmiOriginator, OriginateError, Originator
from web.container import Container

logger = logging.getLogger(__name__)


def originator_of(c: Container) -> Originator:
    """The container's Originator: a stand-in put there (the demo's), else AMI through the
    followed PBX (or a short connection of its own when this instance follows none)."""
    if c.originator is not None:
        return c.originator

    def followed() -> ActionSender | None:
        listener = c.call_tracking.listener if c.call_tracking is not None else None
        return listener if listener is not None and listener.connected else None

    return AmiOriginator(c.settings.telephony, followed)


async def place_call(
    c: Container, *, extension: str, number: str, deal_id: int, user_id: int
) -> None:
    """Run the Originate; tell the agent's page if it fails (the call itself is tracked by AMI)."""
    try:
        await originator_of(c).originate(
            agent_extension=extension, number=number, deal_id=deal_id, user_id=user_id
        )
    except (OriginateError, AmiError, ValueError) as exc:
        logger.warning("click-to-call from %s to %s failed: %s", extension, number, exc)
        async with unit_of_work(c.sessions, c.publish) as session:
            collect_event(
                session,
                CallEvent(
                    type=OriginateFailedMessage.TYPE,
                    linkedid="",
                    extensions=(extension,),
                    payload={"number": number, "deal_id": deal_id, "reason": str(exc)},
                ),
            )
