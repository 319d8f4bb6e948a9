"""Settings of presence and queue statistics, read from the environment once, by the service's
Settings (web/settings.py: `Settings.presence`), and passed to whoever needs them."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PresenceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    # Wrap-up after each answered call (seconds; 0: none). An agent may end it early. The PBX's
    # queues are paused for it too (telephony/presence_pusher.py).
    wrapup_seconds: float = Field(default=30.0, ge=0, le=3600, alias="WRAPUP_SECONDS")
    # Service level: % of calls offered to a queue answered within this many seconds.
    service_level_seconds: float = Field(default=20.0, gt=0, alias="SERVICE_LEVEL_SECONDS")
    # Callers who hang up within this many seconds of joining a queue are counted apart
    # (wrong numbers, impatient redials): they say little about the queue.
    short_abandon_seconds: float = Field(default=5.0, ge=0, alias="SHORT_ABANDON_SECONDS")
