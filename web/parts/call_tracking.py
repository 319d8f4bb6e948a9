"""Call tracking in the running service: AMI listener -> tracker -> pipeline -> database, hub.

The listener must run in exactly one instance (two would log every call twice and pop twice):
`start_following` / `stop_following` are what leader election switches (web/compose.py). The
same instance pushes presence to the PBX's queues as its pipeline commits it (wrap-ups) and
ends wrap-ups there on time (telephony/presence_pusher.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.db import Publisher, StagedPublisher
from telephony.ami_listener import AmiListener, AmiState
from telephony.call_pipeline import CallPipeline
from telephony.presence_events import PBX_PAUSE_EVENTS, PresenceFromPbx
from telephony.presence_pusher import PresencePusher
from telephony.tracker import CallTracker, TrackerConfig
from web.settings import Settings

logger = logging.getLogger(__name__)


def call_pipeline(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    publish: Publisher | None,
    *,
    pop_publish: Publisher | None = None,
) -> CallPipeline:
    """The call pipeline as the service configures it (the tests and benchmarks use this too);
    `pop_publish`: its pop lane's publisher (`publish` when not given)."""
    return CallPipeline(
        CallTracker(TrackerConfig.from_settings(settings.telephony)),
        sessions,
        publish,
        region=settings.core.phone_default_region,
        company_numbers=settings.core.company_numbers,
        callback_due=timedelta(minutes=settings.core.callback_due_minutes),
        locale=settings.core.default_locale,
        wrapup_seconds=settings.presence.wrapup_seconds,
        pop_publish=pop_publish,
    )


class CallTracking:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        publish: Publisher | None,
        *,
        publish_pops: Publisher | None = None,
    ) -> None:
        """`publish`: the hub's (staged) publisher; `publish_pops`: the pop lane's (the hub's
        `publish_shown_first`)."""
        self._settings = settings
        self._sessions = sessions
        self._publish = publish
        self._publish_pops = publish_pops
        self.pipeline: CallPipeline | None = None
        self.listener: AmiListener | None = None
        self.pusher: PresencePusher | None = None

    async def start(self) -> None:
        """Nothing: following starts when this instance is elected."""

    async def stop(self) -> None:
        await self.stop_following()

    async def start_following(self) -> None:
        """Become the instance that follows the PBX: restore calls in progress, then listen."""
        if self.listener is not None:
            return
        s = self._settings
        self.pipeline = call_pipeline(
            s,
            self._sessions,
            self._pipeline_publisher(),
            pop_publish=self._pops_published,
        )
        await self.pipeline.restore()
        self.pipeline.start()
        self.listener = AmiListener(
            s.telephony,
            self.pipeline.on_event,
            self.pipeline.on_connected,
            self._on_state,
            on_lost=self.pipeline.on_lost,
        )
        # presence committed here (wrap-ups) goes to the PBX's queues; wrap-ups end there on time
        self.pusher = PresencePusher(self.listener, self._sessions)
        self.pusher.start()
        await self.pusher.resume()
        # the PBX's queue member pauses set presence, after the pipeline has the event
        pauses = PresenceFromPbx(self._sessions, self._published)
        for name in PBX_PAUSE_EVENTS:
            self.listener.on(name, pauses.on_event)
        await self.listener.start()
        logger.info("following the PBX at %s:%s", s.telephony.ami_host, s.telephony.ami_port)

    async def stop_following(self) -> None:
        if self.pusher is not None:
            await self.pusher.stop()
            self.pusher = None
        if self.listener is not None:
            await self.listener.close()
            self.listener = None
        if self.pipeline is not None:
            await self.pipeline.close()
            self.pipeline = None

    def _pipeline_publisher(self) -> Publisher:
        """`_published`; staged in each batch's transaction when the hub's publisher stages
        (a crash after a commit then delays its news instead of losing it)."""
        if isinstance(self._publish, StagedPublisher):
            return StagedPublisher(self._publish.stage, self._released, self._published)
        return self._published

    async def _released(self, staged: Any, events: list[Any]) -> None:
        """After a batch's commit: presence changes to the pusher, its staged messages out."""
        if self.pusher is not None:
            self.pusher.changed(events)
        if isinstance(self._publish, StagedPublisher):
            await self._publish.release(staged, events)

    async def _published(self, events: Sequence[object]) -> None:
        """The pipeline's publisher: presence changes to the pusher, everything to people."""
        await self._told(events, self._publish)

    async def _pops_published(self, events: Sequence[object]) -> None:
        """The pop lane's publisher: as `_published`, through the pops' publisher if given."""
        await self._told(events, self._publish_pops or self._publish)

    async def _told(self, events: Sequence[object], publish: Publisher | None) -> None:
        if self.pusher is not None:
            self.pusher.changed(events)
        if publish is not None:
            await publish(list(events))

    def _on_state(self, state: AmiState, detail: str) -> None:
        level = logging.ERROR if state == AmiState.AUTH_FAILED else logging.INFO
        logger.log(level, "AMI %s %s", state, detail, extra={"ami_state": str(state)})
