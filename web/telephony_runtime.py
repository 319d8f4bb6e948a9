"""Wiring of call tracking into the running service: AMI listener -> tracker -> pipeline -> DB.

The listener must run in exactly one instance (two would log every call twice and pop twice);
`CallTracking.start_following` / `stop_following` are what leader election switches.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from telephony.ami_listener import AmiListener, AmiState
from telephony.call_pipeline import CallPipeline
from telephony.presence_events import PresenceFromPbx
from telephony.tracker import CallTracker, TrackerConfig
from web.container import Container

logger = logging.getLogger(__name__)


class CallTracking:
    def __init__(self, c: Container) -> None:
        self._c = c
        self.pipeline: CallPipeline | None = None
        self.listener: AmiListener | None = None

    async def start_following(self) -> None:
        """Become the instance that follows the PBX: restore calls in progress, then listen."""
        if self.listener is not None:
            return
        s = self._c.settings
        tracker = CallTracker(TrackerConfig.from_settings(s.telephony))
        self.pipeline = CallPipeline(
            tracker,
            self._c.sessions,
            lambda events: self._c.publish(events),  # the hub may be installed after us
            region=s.core.phone_default_region,
            company_numbers=s.core.company_numbers,
            callback_due=timedelta(minutes=s.core.callback_due_minutes),
        )
        await self.pipeline.restore()
        self.pipeline.start()
        # the PBX's queue member pauses set presence (issue 16), after the pipeline has the event
        pauses = PresenceFromPbx(self._c.sessions, lambda events: self._c.publish(events))
        self.listener = AmiListener(
            s.telephony,
            pauses.tee(self.pipeline.on_event),
            self.pipeline.on_connected,
            self._on_state,
        )
        await self.listener.start()
        logger.info("following the PBX at %s:%s", s.telephony.ami_host, s.telephony.ami_port)

    async def stop_following(self) -> None:
        if self.listener is not None:
            await self.listener.close()
            self.listener = None
        if self.pipeline is not None:
            await self.pipeline.close()
            self.pipeline = None

    def _on_state(self, state: AmiState, detail: str) -> None:
        level = logging.ERROR if state == AmiState.AUTH_FAILED else logging.INFO
        logger.log(level, "AMI %s %s", state, detail, extra={"ami_state": str(state)})

    def status(self) -> dict[str, Any]:
        if self.listener is None:
            return {"following": False}
        return {
            "following": True,
            "ami_state": str(self.listener.state),
            "last_error": self.listener.last_error,
            "stats": dict(self.pipeline.stats) if self.pipeline else {},
        }
