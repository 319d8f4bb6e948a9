"""Settings of the PBX side: AMI connection, FastAGI server, call recognition."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TelephonySettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    ami_enabled: bool = Field(default=True, alias="AMI_ENABLED")
    ami_host: str = Field(default="127.0.0.1", alias="AMI_HOST")
    ami_port: int = Field(default=5038, alias="AMI_PORT")
    ami_username: str = Field(default="crm", alias="AMI_USERNAME")
    ami_secret: str = Field(default="crmsecret", alias="AMI_SECRET")
    ami_ping_interval: float = Field(default=10.0, alias="AMI_PING_INTERVAL")
    ami_action_timeout: float = Field(default=5.0, alias="AMI_ACTION_TIMEOUT")
    ami_reconnect_min: float = Field(default=0.5, alias="AMI_RECONNECT_MIN")
    ami_reconnect_max: float = Field(default=30.0, alias="AMI_RECONNECT_MAX")

    agi_enabled: bool = Field(default=True, alias="AGI_ENABLED")
    agi_host: str = Field(default="127.0.0.1", alias="AGI_HOST")
    agi_port: int = Field(default=4574, alias="AGI_PORT")

    # Contexts where calls from the outside world enter the dialplan.
    inbound_contexts: list[str] = Field(
        default_factory=lambda: ["from-pstn"], alias="INBOUND_CONTEXTS"
    )
    # A regex with a named group `ext` that finds the agent's extension in a channel name.
    agent_channel_pattern: str = Field(
        default=r"^(?:PJSIP|SIP|IAX2|Local)/(?P<ext>\d{2,6})(?:@[\w-]+)?[-;]",
        alias="AGENT_CHANNEL_PATTERN",
    )
    # Context and channel template for click-to-call originates.
    originate_context: str = Field(default="crm-outbound", alias="ORIGINATE_CONTEXT")
    originate_channel: str = Field(default="PJSIP/{ext}", alias="ORIGINATE_CHANNEL")
    # Channel variables that name a call's recording file, first found wins: the kit's
    # CRM_RECORDING, then the one MixMonitor itself sets (FreePBX relies on it too).
    recording_variables: list[str] = Field(
        default_factory=lambda: ["CRM_RECORDING", "MIXMONITOR_FILENAME"],
        alias="RECORDING_VARIABLES",
    )
