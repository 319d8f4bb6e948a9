"""Whom an inbound call rings: pure rules, no I/O.

A known caller goes to the client's responsible agent when that agent is on duty now, free and
not away (paused, do-not-disturb or in wrap-up: crm_core.presence.rules).
Everyone else is shared out round-robin among the agents on duty and free; the turn itself is kept
in the database (`routing_pick`) so that every service instance shares one rotation. Nobody on
duty, or everyone busy: an empty target, and the dialplan falls back to the queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from crm_core.schedules.rules import Schedule, is_on_duty

# Who takes inbound calls: the people with a phone on their desk. Supervisors and admins have
# extensions too, but only to listen in; they are never dealt calls.
ROUTABLE_ROLES = ("operator", "manager")
BUSY_STATES = frozenset({"ringing", "talking"})


class Reason:
    """Why a decision was made; logged and returned to the dialplan's caller for diagnostics."""

    responsible = "responsible"
    round_robin = "round_robin"
    nobody_on_duty = "nobody_on_duty"
    all_busy = "all_busy"
    unavailable = "unavailable"  # the database did not answer in time
    not_routed = "not_routed"  # not a routing request at all


@dataclass(frozen=True, slots=True)
class Agent:
    user_id: int
    extension: str
    schedule: Schedule


@dataclass(frozen=True, slots=True)
class CallerInfo:
    client_id: int
    responsible_id: int | None = None
    deal_id: int | None = None


@dataclass(frozen=True, slots=True)
class RouteDecision:
    target: str = ""  # an extension; empty: let the dialplan fall back to the queue
    user_id: int | None = None
    client_id: int | None = None
    deal_id: int | None = None
    reason: str = Reason.nobody_on_duty


@dataclass(slots=True)
class BatchPlan:
    """Decisions for a batch of calls, with the slots still waiting for a round-robin pick."""

    decisions: list[RouteDecision]
    round_robin: list[int] = field(default_factory=list)  # indices into decisions
    candidates: list[int] = field(default_factory=list)  # user ids, in user id order


def is_routable(role: str, extension: str | None, is_active: bool) -> bool:
    return is_active and bool(extension) and role in ROUTABLE_ROLES


def on_duty(agents: Iterable[Agent], instant: datetime) -> list[Agent]:
    return [a for a in agents if is_on_duty(a.schedule, instant)]


def free(
    agents: Iterable[Agent], busy_extensions: Iterable[str], away: Iterable[int] = ()
) -> list[Agent]:
    """Agents whose phone is idle and who are not away (paused, DND, wrap-up)."""
    busy = set(busy_extensions)
    gone = set(away)
    return [a for a in agents if a.extension not in busy and a.user_id not in gone]


def plan_batch(
    callers: Sequence[CallerInfo | None],
    duty: Sequence[Agent],
    busy_extensions: Iterable[str],
    away: Iterable[int] = (),
) -> BatchPlan:
    """Route each call of a batch, leaving the round-robin ones to the shared turn. Agents away
    (paused, DND, wrap-up) are skipped even as a caller's responsible agent."""
    available = free(duty, busy_extensions, away)
    by_id = {a.user_id: a for a in available}
    idle_reason = Reason.all_busy if duty else Reason.nobody_on_duty
    plan = BatchPlan(decisions=[], candidates=sorted(by_id))
    for index, caller in enumerate(callers):
        client_id = caller.client_id if caller else None
        deal_id = caller.deal_id if caller else None
        own = by_id.get(caller.responsible_id) if caller and caller.responsible_id else None
        if own is not None:
            decision = RouteDecision(
                own.extension, own.user_id, client_id, deal_id, Reason.responsible
            )
        else:
            decision = RouteDecision("", None, client_id, deal_id, idle_reason)
            if available:
                plan.round_robin.append(index)
        plan.decisions.append(decision)
    return plan


def apply_picks(plan: BatchPlan, picks: Sequence[int], extensions: Mapping[int, str]) -> None:
    """Fill the round-robin slots with the users the shared turn picked, in order."""
    for index, user_id in zip(plan.round_robin, picks, strict=False):
        d = plan.decisions[index]
        plan.decisions[index] = RouteDecision(
            extensions[user_id], user_id, d.client_id, d.deal_id, Reason.round_robin
        )


def turn_order(candidates: Iterable[int], last_tickets: Mapping[int, int]) -> list[int]:
    """Who goes next, then after: the longest-waiting first, as `routing_pick` orders them.

    A candidate without a turn row has never been dealt a call and counts as ticket 0.
    """
    return sorted(candidates, key=lambda uid: (last_tickets.get(uid, 0), uid))
