"""The self-check behind ``crm-telephony check``: is the PBX set up so the CRM can see calls?

It connects with the service's own :class:`AmiListener` (so it tests the real code path), asks
Asterisk what it can (``manager show user``, ``manager show settings``, CoreShowChannels), then
watches live events for ``observe_seconds`` and reports, in plain words, what is wrong and how to
fix it. Facts reported by Asterisk win; where the AMI user may not run CLI commands, what was
observed decides, and "nothing observed" is a warning, not a pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from telephony.agi import CHECK_SCRIPT
from telephony.agi_client import CommandsAheadOfTurn, converse, env_block, parse_set_variable
from telephony.ami_listener import AmiError, AmiEvent, AmiListener, AmiState
from telephony.settings import TelephonySettings

Status = Literal["ok", "warn", "fail", "skip"]

# The event classes the CRM needs, and what it loses without each.
NEEDED_CLASSES = {
    "call": "call events (Newchannel, DialBegin, BridgeEnter, Hangup): no call would be logged",
    "dialplan": "dialplan events (Newexten, VarSet): the CRM variables and routing are invisible",
    "agent": "queue agent events (AgentCalled, AgentConnect): queue calls lose who rang/answered",
}
_CHANNEL_HEADERS = ("Channel", "DestChannel")


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: Status
    message: str

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "skip")


async def run_check(
    settings: TelephonySettings,
    observe_seconds: float = 10.0,
    *,
    until: Callable[[], Awaitable[None]] | None = None,
) -> list[CheckResult]:
    """Connect, inspect, observe for ``observe_seconds`` (or until ``until()`` completes, if
    sooner: a replayed PBX that has played everything), and report one result per check:
    ``reachable``, ``login``, ``permissions``, ``timestamps``, ``inbound_context``,
    ``agent_pattern``, ``router``."""
    return [*await _check_ami(settings, observe_seconds, until), await check_router(settings)]


async def _check_ami(
    settings: TelephonySettings,
    observe_seconds: float,
    until: Callable[[], Awaitable[None]] | None,
) -> list[CheckResult]:
    results: list[CheckResult] = []
    where = f"{settings.ami_host}:{settings.ami_port}"
    events: list[AmiEvent] = []
    snapshot: list[dict[str, str]] = []
    outcome: asyncio.Future[tuple[AmiState, str]] = asyncio.get_running_loop().create_future()

    async def on_event(event: AmiEvent, arrival: float) -> None:
        events.append(event)

    async def on_connected(channels: list[dict[str, str]]) -> None:
        snapshot.extend(channels)

    def on_state(state: AmiState, detail: str) -> None:
        final = (AmiState.CONNECTED, AmiState.AUTH_FAILED, AmiState.DISCONNECTED)
        if state in final and not outcome.done():
            outcome.set_result((state, detail))

    listener = AmiListener(settings, on_event, on_connected, on_state)
    await listener.start()
    try:
        try:
            state, detail = await asyncio.wait_for(outcome, settings.ami_action_timeout * 2 + 1)
        except TimeoutError:
            state, detail = AmiState.DISCONNECTED, "no answer"
        if state is AmiState.DISCONNECTED:
            results.append(
                CheckResult(
                    "reachable",
                    "fail",
                    f"Cannot reach the Asterisk manager interface (AMI) at {where}: {detail}. "
                    "Check that Asterisk runs, that manager.conf [general] has 'enabled = yes' "
                    "with this port and a bindaddr this host can reach, and AMI_HOST/AMI_PORT.",
                )
            )
            return results + _skipped("login", "permissions", "timestamps", "inbound_context")
        results.append(
            CheckResult(
                "reachable", "ok", f"Asterisk answers at {where} (Call Manager {listener.version})."
            )
        )
        if state is AmiState.AUTH_FAILED:
            results.append(
                CheckResult(
                    "login",
                    "fail",
                    f"Asterisk refused the login of AMI user {settings.ami_username!r} ({detail}). "
                    "AMI_USERNAME must name a section of manager.conf and AMI_SECRET match its "
                    "'secret'; its permit/deny lines must allow this host. After editing "
                    "manager.conf run 'manager reload' in the Asterisk CLI.",
                )
            )
            return results + _skipped("permissions", "timestamps", "inbound_context")
        results.append(
            CheckResult("login", "ok", f"Logged in as AMI user {settings.ami_username!r}.")
        )
        perms = await _read_permissions(listener, settings.ami_username)
        ts_setting = await _timestamp_setting(listener)
        started = time.monotonic()
        await _observe(listener, observe_seconds, until)
        observed = round(time.monotonic() - started, 1)
    finally:
        await listener.close(drain_timeout=1.0)

    results.append(_check_permissions(settings, perms, events, observed))
    results.append(_check_timestamps(ts_setting, events, observed))
    results.append(_check_inbound(settings, events, snapshot, observed))
    results.append(_check_agent_pattern(settings, events, snapshot, observed))
    return results


async def _observe(
    listener: AmiListener, seconds: float, until: Callable[[], Awaitable[None]] | None
) -> None:
    """Listen for ``seconds`` or until ``until()`` completes; then a Ping's reply, which Asterisk
    writes after every event it sent before it, so none of those is lost when we close."""
    if until is None:
        await asyncio.sleep(seconds)
    else:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(until(), seconds)
    with contextlib.suppress(AmiError):
        await listener.send_action(
            {"Action": "Ping"}, timeout=max(listener.settings.ami_action_timeout, 5.0)
        )


def _skipped(*names: str) -> list[CheckResult]:
    return [
        CheckResult(n, "skip", "Not checked: needs a working AMI login.")
        for n in (*names, "agent_pattern")
    ]


async def _command_output(listener: AmiListener, command: str) -> list[str] | None:
    """A CLI command's output lines, or None when the AMI user may not run it."""
    try:
        replies = await listener.send_action({"Action": "Command", "Command": command})
    except AmiError:
        return None
    if replies[0].get("Response") != "Success":
        return None
    return list(replies[0].get_all("Output"))


async def _read_permissions(listener: AmiListener, username: str) -> set[str] | None:
    """The AMI user's read classes as Asterisk states them (``manager show user``)."""
    lines = await _command_output(listener, f"manager show user {username}")
    for line in lines or ():
        label, _, value = line.partition(":")
        if label.strip().lower() == "read perm":
            return {p.strip() for p in value.split(",") if p.strip()}
    return None


async def _timestamp_setting(listener: AmiListener) -> bool | None:
    lines = await _command_output(listener, "manager show settings")
    for line in lines or ():
        label, _, value = line.partition(":")
        if label.strip().lower() == "timestamp events":
            return value.strip().lower() == "yes"
    return None


def _observed_classes(events: Iterable[AmiEvent]) -> set[str]:
    classes: set[str] = set()
    for event in events:
        classes.update(c for c in event.get("Privilege", "").split(",") if c and c != "all")
    return classes


def _check_permissions(
    settings: TelephonySettings, perms: set[str] | None, events: list[AmiEvent], seconds: float
) -> CheckResult:
    fix = (
        f"set 'read = all' (or add the missing classes) in manager.conf [{settings.ami_username}]"
        " and run 'manager reload'"
    )
    if perms is not None:
        if "all" in perms:
            return CheckResult("permissions", "ok", "The AMI user may read all events.")
        missing = [c for c in NEEDED_CLASSES if c not in perms]
        if not missing:
            return CheckResult("permissions", "ok", "The AMI user may read call/dialplan/agent.")
        lost = "; ".join(f"without {c}: {NEEDED_CLASSES[c]}" for c in missing)
        return CheckResult(
            "permissions",
            "fail",
            f"The AMI user {settings.ami_username!r} may not read {', '.join(missing)} "
            f"events ({lost}). Fix: {fix}.",
        )
    seen = _observed_classes(events)
    missing = [c for c in NEEDED_CLASSES if c not in seen]
    if not missing:
        return CheckResult("permissions", "ok", "call, dialplan and agent events are arriving.")
    return CheckResult(
        "permissions",
        "warn",
        f"Could not ask Asterisk for the AMI user's permissions (it may not run CLI commands), "
        f"and no {', '.join(missing)} events arrived in {seconds:g} s. If calls were made "
        f"meanwhile, the user lacks these read permissions: {fix}.",
    )


def _check_timestamps(setting: bool | None, events: list[AmiEvent], seconds: float) -> CheckResult:
    fix = "set 'timestampevents = yes' in manager.conf [general] and run 'manager reload'"
    # The session's FullyBooted never carries one; OriginateResponse etc. do.
    observed = [e for e in events if e.get("Event") != "FullyBooted"]
    stamped = sum(1 for e in observed if "Timestamp" in e)
    if setting is False or (observed and stamped == 0):
        return CheckResult(
            "timestamps",
            "fail",
            "Asterisk sends events without a Timestamp (timestampevents is off): ring and talk "
            f"times would be measured on arrival, skewed by any delay. Fix: {fix}.",
        )
    if observed and stamped < len(observed):
        return CheckResult(
            "timestamps",
            "warn",
            f"Only {stamped} of {len(observed)} events carried a Timestamp. Check: {fix}.",
        )
    if setting is True or observed:
        return CheckResult("timestamps", "ok", "Events carry Asterisk's Timestamp.")
    return CheckResult(
        "timestamps",
        "warn",
        f"Could not tell whether events carry a Timestamp: no event arrived in {seconds:g} s "
        f"and 'manager show settings' was not allowed. Make sure: {fix}.",
    )


def _check_inbound(
    settings: TelephonySettings,
    events: list[AmiEvent],
    snapshot: list[dict[str, str]],
    seconds: float,
) -> CheckResult:
    wanted = set(settings.inbound_contexts)
    contexts = {e["Context"] for e in [*events, *snapshot] if e.get("Context") and "Channel" in e}
    names = ", ".join(repr(c) for c in sorted(wanted))
    if contexts & wanted:
        return CheckResult(
            "inbound_context",
            "ok",
            f"Calls were seen entering {', '.join(sorted(contexts & wanted))}.",
        )
    if not contexts:
        return CheckResult(
            "inbound_context",
            "warn",
            f"No call was seen in {seconds:g} s, so INBOUND_CONTEXTS ({names}) could not be "
            "verified: make a test call from outside while the check runs.",
        )
    return CheckResult(
        "inbound_context",
        "warn",
        f"No call entered the inbound context(s) {names} in {seconds:g} s; contexts seen: "
        f"{', '.join(sorted(contexts))}. If an outside call was made meanwhile, set "
        "INBOUND_CONTEXTS to the context your trunk delivers calls to (its 'context=' in "
        "pjsip.conf).",
    )


def _check_agent_pattern(
    settings: TelephonySettings,
    events: list[AmiEvent],
    snapshot: list[dict[str, str]],
    seconds: float,
) -> CheckResult:
    try:
        pattern = re.compile(settings.agent_channel_pattern)
    except re.error as exc:
        return CheckResult(
            "agent_pattern", "fail", f"AGENT_CHANNEL_PATTERN is not a valid regex: {exc}."
        )
    if "ext" not in pattern.groupindex:
        return CheckResult(
            "agent_pattern",
            "fail",
            "AGENT_CHANNEL_PATTERN has no named group 'ext' to take the extension from, "
            r"e.g. ^PJSIP/(?P<ext>\d+)-",
        )
    channels = sorted({e[h] for e in [*events, *snapshot] for h in _CHANNEL_HEADERS if e.get(h)})
    matched = {m["ext"] for c in channels if (m := pattern.search(c))}
    if matched:
        return CheckResult(
            "agent_pattern",
            "ok",
            f"Agent extensions recognised in channel names: {', '.join(sorted(matched))}.",
        )
    # A phone that was rung is a DialBegin's DestChannel from a channel of the PBX (the kit's
    # simulated caller dials with no Channel). Seeing only callers' channels proves nothing.
    rung = {e["DestChannel"] for e in events if e.get("Event") == "DialBegin" and e.get("Channel")}
    if not rung:
        seen = f"only {', '.join(channels[:3])} (no phone rung)" if channels else "no channel"
        return CheckResult(
            "agent_pattern",
            "warn",
            f"In {seconds:g} s {seen} was seen, so AGENT_CHANNEL_PATTERN could not be "
            "verified: ring an agent's phone while the check runs.",
        )
    sample = ", ".join(sorted(rung)[:5])
    return CheckResult(
        "agent_pattern",
        "fail",
        f"AGENT_CHANNEL_PATTERN {settings.agent_channel_pattern!r} matched none of the "
        f"{len(channels)} channels seen (phones rung: {sample}): calls would be logged with no "
        "agent. "
        "Adjust it so its 'ext' group captures the extension in your agents' channel names.",
    )


def _turned_away(where: str) -> CheckResult:
    return CheckResult(
        "router",
        "fail",
        f"The FastAGI server at {where} closed the connection without answering: this "
        "machine's address is probably not in AGI_ALLOWED_HOSTS (the PBX's must be too).",
    )


async def check_router(settings: TelephonySettings, within: float = 5.0) -> CheckResult:
    """Ask the FastAGI port what Asterisk's dialplan asks it, byte for byte as res_agi sends it,
    and read the answer as Asterisk reads it (one command per reply)."""
    where = f"{settings.agi_host}:{settings.agi_port}"
    request = env_block(
        {
            "agi_network": "yes",
            "agi_network_script": CHECK_SCRIPT,
            "agi_request": f"agi://{where}/{CHECK_SCRIPT}",
            "agi_channel": "Local/crm-telephony-check",
            "agi_language": "en",
            "agi_type": "Local",
            "agi_uniqueid": f"{time.time():.6f}",
            "agi_callerid": "unknown",
            "agi_calleridname": "crm-telephony check",
            "agi_context": settings.inbound_contexts[0] if settings.inbound_contexts else "",
            "agi_extension": "s",
            "agi_priority": "1",
        }
    )
    started = time.perf_counter()
    try:
        commands = await converse(settings.agi_host, settings.agi_port, request, within=within)
    except CommandsAheadOfTurn as exc:
        return CheckResult(
            "router",
            "fail",
            f"The FastAGI server at {where} writes a command before Asterisk has answered the "
            f"one before ({exc.late}): Asterisk would run it only when the server closes the "
            "connection, and the caller waits in silence until then.",
        )
    except ConnectionResetError:
        return _turned_away(where)
    except (OSError, TimeoutError) as exc:
        return CheckResult(
            "router",
            "fail",
            f"Nothing answers FastAGI at {where} ({exc or type(exc).__name__}): every call "
            "would fall back to the queue. Run 'crm-telephony serve' (it listens on "
            "AGI_HOST/AGI_PORT) and point the dialplan at it: "
            f"AGI(agi://{where}/route).",
        )
    ms = (time.perf_counter() - started) * 1000
    variables = dict(v for c in commands if (v := parse_set_variable(c)) is not None)
    if not commands:  # closed without a word: how the router turns a stranger away
        return _turned_away(where)
    if variables.get("CRM_CHECK") != "ok":
        return CheckResult(
            "router",
            "warn",
            f"Something answers FastAGI at {where}, but not this service's router "
            f"(it answered {commands!r}).",
        )
    return CheckResult(
        "router",
        "ok",
        f"The FastAGI router at {where} answered a request as Asterisk sends it, one command "
        f"per reply, in {ms:.0f} ms.",
    )
