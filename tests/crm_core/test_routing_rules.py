"""Routing rules without a database: who is on duty when, and whom a batch of calls rings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from crm_core.routing.rules import (
    Agent,
    CallerInfo,
    Reason,
    apply_picks,
    is_routable,
    on_duty,
    plan_batch,
    turn_order,
)
from crm_core.schedules.rules import Schedule, ScheduleChange, WeeklyInterval


def agent(
    user_id: int,
    tz: str = "UTC",
    intervals: tuple[WeeklyInterval, ...] = (),
    changes: tuple[ScheduleChange, ...] = (),
) -> Agent:
    return Agent(user_id, str(100 + user_id), Schedule(user_id, tz, intervals, changes))


def nine_to_six(*weekdays: int) -> tuple[WeeklyInterval, ...]:
    return tuple(WeeklyInterval(d, time(9), time(18)) for d in weekdays)


def at(tz: str, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(tz))  # type: ignore[misc]


def ids(agents: list[Agent]) -> list[int]:
    return [a.user_id for a in agents]


# --- who is on duty --------------------------------------------------------------------------


def test_a_night_shift_runs_past_midnight_into_the_next_day() -> None:
    night = agent(1, "Europe/Moscow", (WeeklyInterval(0, time(22), time(6)),))  # Monday night
    assert ids(on_duty([night], at("Europe/Moscow", 2026, 3, 9, 21, 59))) == []  # Monday
    assert ids(on_duty([night], at("Europe/Moscow", 2026, 3, 9, 22, 0))) == [1]
    assert ids(on_duty([night], at("Europe/Moscow", 2026, 3, 10, 5, 59))) == [1]  # Tuesday
    assert ids(on_duty([night], at("Europe/Moscow", 2026, 3, 10, 6, 0))) == []
    # Tuesday's own night has no shift
    assert ids(on_duty([night], at("Europe/Moscow", 2026, 3, 10, 23, 0))) == []


def test_a_day_off_on_the_start_day_cancels_the_whole_night_shift() -> None:
    night = agent(
        1,
        "Europe/Moscow",
        (WeeklyInterval(0, time(22), time(6)),),
        (ScheduleChange("day_off", date(2026, 3, 9), date(2026, 3, 9)),),
    )
    assert ids(on_duty([night], at("Europe/Moscow", 2026, 3, 10, 2, 0))) == []


def test_managers_in_different_time_zones_work_their_own_local_hours() -> None:
    moscow = agent(1, "Europe/Moscow", nine_to_six(0, 1, 2, 3, 4))
    new_york = agent(2, "America/New_York", nine_to_six(0, 1, 2, 3, 4))
    both = [moscow, new_york]
    # Tuesday 2026-03-10 07:00 UTC: 10:00 in Moscow, 03:00 in New York (EDT since Sunday)
    assert ids(on_duty(both, datetime(2026, 3, 10, 7, 0, tzinfo=UTC))) == [1]
    # 13:30 UTC: 16:30 in Moscow, 09:30 in New York: both
    assert ids(on_duty(both, datetime(2026, 3, 10, 13, 30, tzinfo=UTC))) == [1, 2]
    # 15:00 UTC: 18:00 in Moscow (shift over), 11:00 in New York
    assert ids(on_duty(both, datetime(2026, 3, 10, 15, 0, tzinfo=UTC))) == [2]


def test_new_york_on_the_day_clocks_spring_forward() -> None:
    # Sunday 2026-03-08: 02:00 EST jumps to 03:00 EDT. A night shift 01:00-05:00 local and a day
    # shift 09:00-18:00 local keep their wall-clock hours on both sides of the jump.
    ny = "America/New_York"
    night = agent(1, ny, (WeeklyInterval(6, time(1), time(5)),))
    day = agent(2, ny, nine_to_six(6))
    both = [night, day]
    assert ids(on_duty(both, datetime(2026, 3, 8, 5, 59, tzinfo=UTC))) == []  # 00:59 EST
    assert ids(on_duty(both, datetime(2026, 3, 8, 6, 30, tzinfo=UTC))) == [1]  # 01:30 EST
    assert ids(on_duty(both, datetime(2026, 3, 8, 7, 30, tzinfo=UTC))) == [1]  # 03:30 EDT
    assert ids(on_duty(both, datetime(2026, 3, 8, 9, 0, tzinfo=UTC))) == []  # 05:00 EDT
    assert ids(on_duty(both, datetime(2026, 3, 8, 12, 59, tzinfo=UTC))) == []  # 08:59 EDT
    assert ids(on_duty(both, datetime(2026, 3, 8, 13, 0, tzinfo=UTC))) == [2]  # 09:00 EDT
    assert ids(on_duty(both, datetime(2026, 3, 8, 21, 59, tzinfo=UTC))) == [2]  # 17:59 EDT
    assert ids(on_duty(both, datetime(2026, 3, 8, 22, 0, tzinfo=UTC))) == []  # 18:00 EDT


def test_berlin_on_the_day_clocks_spring_forward() -> None:
    # Sunday 2026-03-29: 02:00 CET jumps to 03:00 CEST; 09:00 local is 07:00 UTC that day.
    day = agent(1, "Europe/Berlin", nine_to_six(5, 6))
    assert ids(on_duty([day], datetime(2026, 3, 28, 8, 0, tzinfo=UTC))) == [1]  # Sat 09:00 CET
    assert ids(on_duty([day], datetime(2026, 3, 29, 7, 59, tzinfo=UTC))) == [1]  # Sun 09:59 CEST
    assert ids(on_duty([day], datetime(2026, 3, 29, 6, 59, tzinfo=UTC))) == []  # Sun 08:59 CEST
    assert ids(on_duty([day], datetime(2026, 3, 29, 16, 0, tzinfo=UTC))) == []  # Sun 18:00 CEST


def test_a_vacation_ending_today_keeps_today_off_and_tomorrow_on() -> None:
    tz = "Europe/Moscow"
    back = agent(
        1,
        tz,
        nine_to_six(0, 1, 2, 3, 4),
        (ScheduleChange("vacation", date(2026, 3, 2), date(2026, 3, 10)),),
    )
    assert ids(on_duty([back], at(tz, 2026, 3, 10, 12, 0))) == []  # the vacation's last day
    assert ids(on_duty([back], at(tz, 2026, 3, 11, 9, 0))) == [1]


def test_an_extra_shift_on_a_day_off() -> None:
    extra = agent(
        1,
        "UTC",
        (),
        (ScheduleChange("extra_shift", date(2026, 3, 8), date(2026, 3, 8), time(10), time(12)),),
    )
    assert ids(on_duty([extra], datetime(2026, 3, 8, 11, 0, tzinfo=UTC))) == [1]
    assert ids(on_duty([extra], datetime(2026, 3, 8, 12, 0, tzinfo=UTC))) == []


@pytest.mark.parametrize(
    ("role", "extension", "active", "routable"),
    [
        ("manager", "101", True, True),
        ("operator", "102", True, True),
        ("supervisor", "103", True, False),
        ("admin", "104", True, False),
        ("manager", None, True, False),
        ("manager", "", True, False),
        ("manager", "105", False, False),
    ],
)
def test_who_takes_calls(role: str, extension: str | None, active: bool, routable: bool) -> None:
    assert is_routable(role, extension, active) is routable


# --- whom a batch of calls rings ---------------------------------------------------------------


def test_the_responsible_manager_first_when_on_duty_and_free() -> None:
    duty = [agent(1), agent(2), agent(3)]
    plan = plan_batch([CallerInfo(client_id=7, responsible_id=2, deal_id=9)], duty, [])
    d = plan.decisions[0]
    assert (d.target, d.user_id, d.client_id, d.deal_id, d.reason) == (
        "102",
        2,
        7,
        9,
        Reason.responsible,
    )
    assert plan.round_robin == []


def test_a_busy_or_absent_responsible_manager_falls_to_round_robin() -> None:
    duty = [agent(1), agent(2), agent(3)]
    busy = plan_batch([CallerInfo(7, responsible_id=2)], duty, ["102"])
    assert busy.round_robin == [0] and busy.candidates == [1, 3]
    assert busy.decisions[0].client_id == 7  # the screen-pop still knows the client
    absent = plan_batch([CallerInfo(7, responsible_id=42)], duty, [])
    assert absent.round_robin == [0] and absent.candidates == [1, 2, 3]


def test_unknown_callers_go_round_robin_over_the_free_ones() -> None:
    duty = [agent(3), agent(1), agent(2)]
    plan = plan_batch([None, None, CallerInfo(5)], duty, ["101"])
    assert plan.round_robin == [0, 1, 2]
    assert plan.candidates == [2, 3]
    apply_picks(plan, [2, 3, 2], {1: "101", 2: "102", 3: "103"})
    assert [d.target for d in plan.decisions] == ["102", "103", "102"]
    assert {d.reason for d in plan.decisions} == {Reason.round_robin}
    assert plan.decisions[2].client_id == 5


def test_nobody_on_duty_or_everyone_busy_is_an_empty_target() -> None:
    nobody = plan_batch([None, CallerInfo(7, responsible_id=1)], [], [])
    assert [(d.target, d.reason) for d in nobody.decisions] == [
        ("", Reason.nobody_on_duty),
        ("", Reason.nobody_on_duty),
    ]
    assert nobody.round_robin == []
    busy = plan_batch([None], [agent(1), agent(2)], ["101", "102"])
    assert (busy.decisions[0].target, busy.decisions[0].reason) == ("", Reason.all_busy)
    assert busy.round_robin == []


def test_turn_order_longest_waiting_first_and_newcomers_before_everyone() -> None:
    assert turn_order([1, 2, 3, 4], {1: 10, 2: 5, 3: 7}) == [4, 2, 3, 1]
    assert turn_order([2, 1], {}) == [1, 2]
