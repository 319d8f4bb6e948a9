"""Settings of the PBX side: AMI connection, FastAGI server, call recognition."""

import ipaddress
import re

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


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
    # Who may ask the router (the PBX): addresses, CIDR networks or host names (resolved at start
    # and again when an unknown peer knocks). Loopback by default: Asterisk on this machine, the
    # demo; docker-compose.yml names its asterisk service.
    agi_allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1"], min_length=1, alias="AGI_ALLOWED_HOSTS"
    )
    # One PBX opens one connection per call being routed (milliseconds each): hundreds at once
    # is a burst far beyond a contact center's; more is a fault or an attack.
    agi_max_connections_per_host: int = Field(
        default=512, ge=1, alias="AGI_MAX_CONNECTIONS_PER_HOST"
    )
    agi_max_connections: int = Field(default=4096, ge=1, alias="AGI_MAX_CONNECTIONS")
    # Asterisk sends its environment as it connects; a socket silent this long is closed.
    agi_env_timeout: float = Field(default=2.0, gt=0, alias="AGI_ENV_TIMEOUT")
    # How long a routing question waits, after the AMI link was lost, for agent_states to follow
    # the PBX again (a call that ended unseen leaves its agents "talking"); 0: never waits. Kept
    # under the FastAGI answer's own 3 s bound, past which the call goes to the queue.
    routing_sync_wait: float = Field(default=2.0, ge=0, le=2.5, alias="ROUTING_SYNC_WAIT")

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

    @field_validator("agi_allowed_hosts")
    @classmethod
    def _hosts_or_networks(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            if not _host_or_network(entry.strip()):
                raise ValueError(f"{entry!r} is neither an address, a network nor a host name")
        return entries


def _host_or_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
        return True
    except ValueError:
        # a host name, unless it is a mistyped address (10.0.0.256, 10.0.0.0/33)
        return bool(_HOST_NAME.match(entry)) and not entry.replace(".", "").isdigit()
