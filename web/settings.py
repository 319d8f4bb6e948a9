"""The application's settings: each package's own, combined here and read once."""

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm_core.presence.settings import PresenceSettings
from crm_core.settings import CoreSettings
from notifier.settings import NotifierSettings
from telephony.settings import TelephonySettings


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    http_host: str = Field(default="127.0.0.1", alias="HTTP_HOST")
    http_port: int = Field(default=8000, alias="HTTP_PORT")
    # Empty: generated on the first start and kept in DATA_DIR (web/secret_key.py); a sample or
    # short key is refused outside the demo.
    # It signs recording links (bearer tokens are server-side sessions, web/sessions).
    secret_key: str = Field(default="", alias="SECRET_KEY")
    # How long a sign-in (server-side session, its bearer token) lasts; sign-out ends it sooner.
    token_ttl_minutes: int = Field(default=12 * 60, alias="TOKEN_TTL_MINUTES")
    # Sign-in throttling, counted in PostgreSQL (shared by every instance): more than
    # LOGIN_MAX_ATTEMPTS failed sign-ins of one login, or LOGIN_MAX_ATTEMPTS_PER_ADDRESS from one
    # client address, within LOGIN_WINDOW_SECONDS lock that login or address for
    # LOGIN_LOCKOUT_SECONDS (429 with Retry-After).
    login_max_attempts: int = Field(default=5, ge=1, alias="LOGIN_MAX_ATTEMPTS")
    login_max_attempts_per_address: int = Field(
        default=30, ge=1, alias="LOGIN_MAX_ATTEMPTS_PER_ADDRESS"
    )
    login_window_seconds: int = Field(default=900, ge=1, alias="LOGIN_WINDOW_SECONDS")
    login_lockout_seconds: int = Field(default=300, ge=1, alias="LOGIN_LOCKOUT_SECONDS")
    # A 429 is held this long before it goes out: a locked-out script then waits instead of
    # flooding the service with sign-ins that cost it nothing to send.
    login_refusal_delay_seconds: float = Field(
        default=1.0, ge=0, le=30, alias="LOGIN_REFUSAL_DELAY_SECONDS"
    )
    # Threads hashing and checking passwords (argon2, ~0.3 s of CPU each); 0: cores - 1.
    password_hash_workers: int = Field(default=0, ge=0, alias="PASSWORD_HASH_WORKERS")
    # Request bodies: larger ones get 413 before they are read. Routes anyone may call without a
    # token (sign-in form, Twilio webhooks) take PUBLIC_MAX_BODY_BYTES.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1, alias="MAX_BODY_BYTES")
    public_max_body_bytes: int = Field(default=64 * 1024, ge=1, alias="PUBLIC_MAX_BODY_BYTES")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    # auto: lines for people on a terminal, JSON otherwise; json / human to choose (web/logs.py)
    log_format: Literal["auto", "human", "json"] = Field(default="auto", alias="LOG_FORMAT")
    # The weekly hours a new user with an extension gets (web/user_defaults.py): without any,
    # the router never rings them. "none": new users start without a schedule.
    default_schedule: str = Field(default="Mon-Fri 09:00-18:00", alias="DEFAULT_SCHEDULE")
    # How long /api/health waits for the database's answer before reporting it down (503).
    health_timeout_seconds: float = Field(default=3.0, gt=0, alias="HEALTH_TIMEOUT_SECONDS")

    # Call recordings (MixMonitor). A URL template (for a remote PBX) wins over a directory.
    # The directory Asterisk writes into, as mounted here; unset with no template: not served.
    recordings_dir: Path | None = Field(default=None, alias="RECORDINGS_DIR")
    # The same directory as Asterisk names it: paths under it keep their subfolders (FreePBX
    # files by date), any other absolute path is looked up by its file name alone.
    recordings_pbx_dir: str = Field(
        default="/var/spool/asterisk/monitor", alias="RECORDINGS_PBX_DIR"
    )
    # e.g. "https://pbx.example/rec/{name}": {name} is the file's name as found above.
    recordings_url_template: str = Field(default="", alias="RECORDINGS_URL_TEMPLATE")
    # How long a player's signed recording URL works (an <audio> element sends no header).
    recording_link_ttl_seconds: int = Field(default=1800, alias="RECORDING_LINK_TTL_SECONDS")

    @field_validator("default_schedule")
    @classmethod
    def _weekly(cls, value: str) -> str:
        from web.user_defaults import parse_weekly  # a typo stops the start, not the routing

        parse_weekly(value)
        return value


class Settings:
    """All settings of one running service."""

    def __init__(
        self,
        core: CoreSettings | None = None,
        telephony: TelephonySettings | None = None,
        notifier: NotifierSettings | None = None,
        web: WebSettings | None = None,
        presence: PresenceSettings | None = None,
    ) -> None:
        self.core = core or CoreSettings()
        self.telephony = telephony or TelephonySettings()
        self.notifier = notifier or NotifierSettings()
        self.web = web or WebSettings()
        self.presence = presence or PresenceSettings()
