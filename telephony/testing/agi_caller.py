"""Asterisk's side of a FastAGI request made for a replayed call: the demo PBX, the tests and the
bench play it.

For the demo, a replayed call asks the real router.
The recordings show where Asterisk ran `AGI(agi://…/route)` (a `Newexten` with Application AGI);
the demo turns each such event into the request Asterisk made at that moment, so the router,
its round-robin turn and the schedules page move as they would with a live PBX. (The recorded
call still rings whom it rang when it was recorded.)
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from telephony.agi_client import converse, env_block, parse_set_variable


def agi_request_of(event: Mapping[str, str]) -> str | None:
    """The `agi://…` URL this event runs, if it is the dialplan starting a FastAGI script."""
    if event.get("Event") != "Newexten" or event.get("Application") != "AGI":
        return None
    url = event.get("AppData", "").split(",", 1)[0].strip()
    return url if url.startswith("agi://") else None


def env_from_event(event: Mapping[str, str], request: str) -> dict[str, str]:
    """The `agi_*` environment Asterisk sends for the channel of `event` (as agi_request.txt)."""
    channel = event.get("Channel", "")
    return {
        "agi_network": "yes",
        "agi_network_script": urlsplit(request).path.lstrip("/"),
        "agi_request": request,
        "agi_channel": channel,
        "agi_language": event.get("Language", "en"),
        "agi_type": channel.split("/", 1)[0],
        "agi_uniqueid": event.get("Uniqueid", ""),
        "agi_callerid": event.get("CallerIDNum", "unknown"),
        "agi_calleridname": event.get("CallerIDName", "unknown"),
        "agi_dnid": "unknown",
        "agi_rdnis": "unknown",
        "agi_context": event.get("Context", ""),
        "agi_extension": event.get("Exten", ""),
        "agi_priority": event.get("Priority", "1"),
        "agi_accountcode": event.get("AccountCode", ""),
    }


async def ask_route(
    host: str, port: int, env: Mapping[str, str], *, within: float = 3.0
) -> dict[str, str]:
    """Send `env` as Asterisk does; the variables the server set."""
    commands = await converse(host, port, env_block(env), within=within)
    return dict(found for c in commands if (found := parse_set_variable(c)) is not None)
