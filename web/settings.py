"""The application's settings: each package's own, combined here and read once."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crm_core.settings import CoreSettings
from notifier.settings import NotifierSettings
from telephony.settings import TelephonySettings


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    http_host: str = Field(default="127.0.0.1", alias="HTTP_HOST")
    http_port: int = Field(default=8000, alias="HTTP_PORT")
    # Empty: generated on the first start and kept in DATA_DIR (web/secret_key.py); a sample or
    # short key is refused outside the demo.
    secret_key: str = Field(default="", alias="SECRET_KEY")
    token_ttl_minutes: int = Field(default=12 * 60, alias="TOKEN_TTL_MINUTES")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
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
