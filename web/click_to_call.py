"""Click-to-call from a card: the manager's phone rings first, then the client's number.

The Originate goes through the AMI connection of the instance that follows the PBX when that is
this one; any other instance opens a short connection of its own for the action (AMI allows many
manager sessions), so any instance serves any browser.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from crm_core.db import unit_of_work
from crm_core.events.messages import OriginateFailedMessage
from crm_core.events.types import CallEvent
from telephony.ami_listener import AmiError, AmiListener
from telephony.originate import OriginateError, originate_call
from web.container import Container

logger = logging.getLogger(__name__)


async def _noop_event(event: dict[str, str], arrival: float) -> None:
    return None


async def _originate(c: Container, **kwargs: Any) -> str:
    listener = c.call_tracking.listener if c.call_tracking is not None else None
    if listener is not None and listener.connected:
        return await originate_call(listener, settings=c.settings.telephony, **kwargs)
    transient = AmiListener(c.settings.telephony, _noop_event)
    await transient.start()
    try:
        async with asyncio.timeout(c.settings.telephony.ami_action_timeout):
            await transient.wait_connected()
        return await originate_call(transient, settings=c.settings.telephony, **kwargs)
    except TimeoutError:
        raise OriginateError(
            f"cannot reach Asterisk at {c.settings.telephony.ami_host}:"
            f"{c.settings.telephony.ami_port} ({transient.last_error or transient.state})"
        ) from None
    finally:
        await transient.close(drain_timeout=0)


async def place_call(
    c: Container, *, extension: str, number: str, deal_id: int, user_id: int
) -> None:
    """Run the Originate; tell the agent's page if it fails (the call itself is tracked by AMI)."""
    try:
        await _originate(
            c, agent_extension=extension, number=number, deal_id=deal_id, user_id=user_id
        )
    except (OriginateError, AmiError, ValueError) as exc:
        logger.warning("click-to-call from %s to %s failed: %s", extension, number, exc)
        async with unit_of_work(c.sessions, c.publish) as session:
            from crm_core.db import collect_event

            collect_event(
                session,
                CallEvent(
                    type=OriginateFailedMessage.TYPE,
                    linkedid="",
                    extensions=(extension,),
                    payload={"number": number, "deal_id": deal_id, "reason": str(exc)},
                ),
            )
