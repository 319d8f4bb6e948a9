"""The FastAGI router in the running service: AGI server -> Router -> database.

Every instance may run one: the round-robin turn lives in the database (`routing_pick`), so two
instances behind the same Asterisk (or two Asterisks) share one fair rotation.
"""

from __future__ import annotations

import logging

from crm_core.routing.router import Router
from telephony.agi import AgiServer
from web.settings import Settings

logger = logging.getLogger(__name__)


class AgiRouting:
    def __init__(self, settings: Settings, database_url: str) -> None:
        self._settings = settings
        self._database_url = database_url
        self.router: Router | None = None
        self.server: AgiServer | None = None

    async def start(self) -> None:
        s = self._settings
        t = s.telephony
        self.router = Router(
            self._database_url,
            region=s.core.phone_default_region,
            sync_wait=t.routing_sync_wait,
        )
        server = AgiServer(
            self.router.route,
            t.agi_host,
            t.agi_port,
            env_timeout=t.agi_env_timeout,
            max_connections=t.agi_max_connections,
            max_connections_per_host=t.agi_max_connections_per_host,
            allowed_hosts=t.agi_allowed_hosts,
        )
        try:
            await server.start()
        except OSError as exc:
            # The CRM stays useful without it: Asterisk's dialplan falls back to the queue.
            logger.error(
                "FastAGI cannot listen on %s:%s (%s): calls will go to the queue",
                s.telephony.agi_host,
                s.telephony.agi_port,
                exc,
            )
            return
        self.server = server
        await self.router.warm_up()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
        if self.router is not None:
            await self.router.close()
            self.router = None
