"""The application's settings: each package's own, combined here and read once."""

import secrets

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm_core.settings import CoreSettings
from notifier.settings import NotifierSettings
from telephony.settings import TelephonySettings


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    http_host: str = Field(default="127.0.0.1", alias="HTTP_HOST")
    http_port: int = Field(default=8000, alias="HTTP_PORT")
    # Empty: a random key per process (fine for one instance; several must share SECRET_KEY).
    secret_key: str = Field(default_factory=lambda: secrets.token_urlsafe(48), alias="SECRET_KEY")
    token_ttl_minutes: int = Field(default=12 * 60, alias="TOKEN_TTL_MINUTES")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")


class Settings:
    """All settings of one running service."""

    def __init__(
        self,
        core: CoreSettings | None = None,
        telephony: TelephonySettings | None = None,
        notifier: NotifierSettings | None = None,
        web: WebSettings | None = None,
    ) -> None:
        self.core = core or CoreSettings()
        self.telephony = telephony or TelephonySettings()
        self.notifier = notifier or NotifierSettings()
        self.web = web or WebSettings()
