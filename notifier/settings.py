"""Settings of delivery to people: SMS (Twilio) and email (SMTP)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NotifierSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    twilio_account_sid: str = Field(default="", alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str = Field(default="", alias="TWILIO_AUTH_TOKEN")
    twilio_from_number: str = Field(default="", alias="TWILIO_FROM_NUMBER")
    # Base URL of the Twilio API; tests point it at a local Prism mock.
    twilio_api_base: str = Field(default="https://api.twilio.com", alias="TWILIO_API_BASE")
    public_base_url: str = Field(default="http://127.0.0.1:8000", alias="PUBLIC_BASE_URL")

    smtp_host: str = Field(default="127.0.0.1", alias="SMTP_HOST")
    smtp_port: int = Field(default=25, alias="SMTP_PORT")
    smtp_username: str = Field(default="", alias="SMTP_USERNAME")
    smtp_password: str = Field(default="", alias="SMTP_PASSWORD")
    smtp_from: str = Field(default="crm@example.com", alias="SMTP_FROM")

    # SMS and email outbox worker: runs when this is on and Twilio or SMTP_HOST is configured.
    outbox_enabled: bool = Field(default=True, alias="OUTBOX_ENABLED")
    outbox_max_attempts: int = Field(default=5, ge=1, le=50, alias="OUTBOX_MAX_ATTEMPTS")
    outbox_retry_seconds: float = Field(default=5.0, gt=0, alias="OUTBOX_RETRY_SECONDS")
    # Inbound email: an SMTP server of the service that logs every message it is handed.
    inbound_smtp_enabled: bool = Field(default=False, alias="INBOUND_SMTP_ENABLED")
    inbound_smtp_host: str = Field(default="127.0.0.1", alias="INBOUND_SMTP_HOST")
    inbound_smtp_port: int = Field(default=2525, alias="INBOUND_SMTP_PORT")
    # Recipient domains it accepts mail for (anything else: 550, no relaying); empty: the domain
    # of SMTP_FROM, the address clients reply to.
    inbound_smtp_domains: list[str] = Field(default_factory=list, alias="INBOUND_SMTP_DOMAINS")
    # Recipients per message; past it 452 (RFC 5321: the sender retries the rest later).
    inbound_smtp_max_recipients: int = Field(
        default=100, ge=1, le=1000, alias="INBOUND_SMTP_MAX_RECIPIENTS"
    )
    # The MX/relays in front (addresses or networks) whose Authentication-Results header (SPF,
    # DKIM, DMARC) is believed; from anyone else a sender is "unverified".
    inbound_smtp_trusted_relays: list[str] = Field(
        default_factory=list, alias="INBOUND_SMTP_TRUSTED_RELAYS"
    )
    # The authserv-id those relays write (e.g. "mx.example.com"): when set, only their headers
    # count, not one the sender wrote into the message beforehand.
    inbound_smtp_authserv_id: str = Field(default="", alias="INBOUND_SMTP_AUTHSERV_ID")

    def accepted_domains(self) -> list[str]:
        domains = self.inbound_smtp_domains or [self.smtp_from.rpartition("@")[2]]
        return [d.strip().lower().rstrip(".") for d in domains if d.strip()]

    ws_queue_size: int = Field(default=256, alias="WS_QUEUE_SIZE")
    ws_heartbeat_seconds: float = Field(default=20.0, alias="WS_HEARTBEAT_SECONDS")
    # Task reminders (every instance claims due ones; exactly once across them): the longest
    # sleep between looks for due reminders, and how often each instance records which users
    # have a page open (an absent user with an email address is emailed the reminder instead).
    reminders_enabled: bool = Field(default=True, alias="REMINDERS_ENABLED")
    reminder_poll_seconds: float = Field(default=5.0, gt=0, alias="REMINDER_POLL_SECONDS")
    presence_heartbeat_seconds: float = Field(
        default=10.0, gt=0, alias="PRESENCE_HEARTBEAT_SECONDS"
    )
