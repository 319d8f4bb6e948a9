"""The composition root: the parts built in dependency order, started in it, stopped in reverse."""

from __future__ import annotations

from dataclasses import replace

import pytest

from notifier.hub import EventHub
from notifier.leader import LeaderElection
from telephony.settings import TelephonySettings
from web.compose import build_services, running
from web.container import Container
from web.parts.agi_routing import AgiRouting
from web.parts.call_tracking import CallTracking
from web.parts.messaging import Messaging
from web.parts.reminders import Reminders
from web.session_watch import SessionWatch
from web.settings import Settings


def test_the_hub_comes_first_and_publishes_for_everyone(container: Container) -> None:
    c = build_services(container)
    assert [type(p) for p in c.parts] == [
        EventHub,
        SessionWatch,
        CallTracking,
        Messaging,
        Reminders,
    ]
    assert c.hub is not None and c.publish == c.hub.publish
    # the test settings switch the PBX off: no election, no FastAGI server
    assert c.ami_election is None and c.agi_routing is None
    assert c.call_tracking is c.parts[2] and c.messaging is c.parts[3]
    assert c.reminders is c.parts[4]
    assert container.hub is None and container.parts == ()  # the bare one is left as it was


def test_with_the_pbx_on_the_election_and_the_router_are_composed(
    container: Container, settings: Settings
) -> None:
    settings.telephony = TelephonySettings(AMI_ENABLED=True, AGI_ENABLED=True, AGI_PORT=0)
    c = build_services(container)
    assert [type(p) for p in c.parts] == [
        EventHub,
        SessionWatch,
        CallTracking,
        LeaderElection,
        AgiRouting,
        Messaging,
        Reminders,
    ]
    assert c.ami_election is c.parts[3] and c.agi_routing is c.parts[4]


class Part:
    def __init__(self, name: str, log: list[str], *, fails: bool = False) -> None:
        self.name, self.log, self.fails = name, log, fails

    async def start(self) -> None:
        if self.fails:
            raise RuntimeError(f"{self.name} cannot start")
        self.log.append(f"start {self.name}")

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_parts_stop_in_reverse(container: Container) -> None:
    log: list[str] = []
    c = replace(container, parts=(Part("hub", log), Part("ami", log), Part("sms", log)))
    async with running(c):
        log.append("serving")
    assert log == [
        "start hub",
        "start ami",
        "start sms",
        "serving",
        "stop sms",
        "stop ami",
        "stop hub",
    ]


async def test_a_part_that_cannot_start_stops_those_started_before_it(
    container: Container,
) -> None:
    log: list[str] = []
    parts = (Part("hub", log), Part("ami", log, fails=True), Part("sms", log))
    with pytest.raises(RuntimeError, match="ami cannot start"):
        async with running(replace(container, parts=parts)):
            log.append("serving")
    assert log == ["start hub", "stop hub"]
