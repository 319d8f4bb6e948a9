"""Presence and report arithmetic: the pure rules, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from crm_core.presence import rules
from crm_core.presence.rules import Presence
from crm_core.reports.rules import csv_text, percent, period_plan, queue_figures
from crm_core.routing.rules import Agent, CallerInfo, Reason, plan_batch
from crm_core.schedules.rules import Schedule

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_change_is_new_state_now_and_the_same_state_is_no_change() -> None:
    assert rules.change(None, "available", None, T0) is None  # never set = available
    paused = rules.change(None, "paused", "lunch", T0)
    assert paused == Presence("paused", "lunch", T0)
    assert rules.change(paused, "paused", "lunch", at(5)) is None
    assert rules.change(paused, "paused", "training", at(5)) == Presence(
        "paused", "training", at(5)
    )
    # a reason means something only for a pause
    assert rules.change(paused, "dnd", "lunch", at(9)) == Presence("dnd", None, at(9))
    with pytest.raises(ValueError):
        rules.change(None, "asleep", None, T0)


def test_wrapup_follows_an_answered_call_and_ends_on_time() -> None:
    w = rules.wrapup_after_call(None, ended=T0, seconds=30, now=at(1))
    assert w == Presence("wrapup", None, T0, at(30))
    assert rules.is_away(w, at(29.9))
    assert not rules.is_away(w, at(30))  # over exactly at its end, with nobody writing
    assert rules.effective(w, at(31)) == Presence("available", None, at(30))
    # ended early by the agent
    assert rules.change(w, "available", None, at(10)) == Presence("available", None, at(10))


def test_no_wrapup_over_a_chosen_pause_nor_when_already_over() -> None:
    paused = Presence("paused", "lunch", T0)
    assert rules.wrapup_after_call(paused, at(5), 30, at(6)) is None
    assert rules.wrapup_after_call(Presence("dnd", None, T0), at(5), 30, at(6)) is None
    assert rules.wrapup_after_call(None, T0, 30, at(31)) is None  # a replay of an old call
    assert rules.wrapup_after_call(None, T0, 0, at(1)) is None  # WRAPUP_SECONDS=0: none
    # a new call's wrap-up replaces the end of an earlier one? no: only from available
    w = rules.wrapup_after_call(None, T0, 30, at(1))
    assert rules.wrapup_after_call(w, at(40), 30, at(41)) == Presence(
        "wrapup", None, at(40), at(70)
    )


def test_the_pbx_pause_flag_and_presence_agree() -> None:
    assert rules.from_pbx(None, True, "Lunch ", T0) == Presence("paused", "Lunch", T0)
    assert rules.from_pbx(None, True, "", T0) == Presence("paused", None, T0)
    assert rules.from_pbx(None, False, None, T0) is None
    dnd = Presence("dnd", None, T0)
    assert rules.from_pbx(dnd, True, "dnd", at(1)) is None  # the echo of our own push
    assert rules.from_pbx(dnd, False, None, at(1)) == Presence("available", None, at(1))
    wrap = Presence("wrapup", None, T0, at(30))
    # the echo of our own wrap-up pause is no person's pause, even once the wrap-up is over
    assert rules.from_pbx(wrap, True, "wrap-up", at(1)) is None
    assert rules.from_pbx(wrap, True, "wrap-up", at(31)) is None
    assert rules.from_pbx(None, True, "wrap-up", at(1)) is None
    # unpaused at the phone: the wrap-up ends there; another PBX pause overrides it
    assert rules.from_pbx(wrap, False, None, at(1)) == Presence("available", None, at(1))
    assert rules.from_pbx(wrap, False, None, at(31)) is None  # over already: agrees
    assert rules.from_pbx(wrap, True, None, at(1)) == Presence("paused", None, at(1))
    assert rules.from_pbx(wrap, True, "Lunch", at(1)) == Presence("paused", "Lunch", at(1))


def test_the_pbx_flag_for_each_state() -> None:
    assert rules.pbx_flag("available", None) == rules.PbxPause(False)
    assert rules.pbx_flag("available", "lunch") == rules.PbxPause(False)
    assert rules.pbx_flag("paused", "lunch") == rules.PbxPause(True, "lunch")
    assert rules.pbx_flag("paused", None) == rules.PbxPause(True, "paused")
    assert rules.pbx_flag("dnd", None) == rules.PbxPause(True, "dnd")
    assert rules.pbx_flag("wrapup", None) == rules.PbxPause(True, "wrap-up")
    # a wrap-up as it is at a moment: paused until its end, unpaused from then on
    wrap = Presence("wrapup", None, T0, at(30))
    assert rules.pbx_pause(wrap, at(29)) == rules.PbxPause(True, "wrap-up")
    assert rules.pbx_pause(wrap, at(30)) == rules.PbxPause(False)
    assert rules.pbx_pause(None, T0) == rules.PbxPause(False)


def test_what_each_transition_pushes_to_the_pbx() -> None:
    wrap = Presence("wrapup", None, T0, at(30))
    # wrap-up starts: the queues pause the agent (a push that comes late, after its end: unpause)
    assert rules.pbx_push(wrap, "call", at(0.1)) == rules.PbxPause(True, "wrap-up")
    assert rules.pbx_push(wrap, "call", at(31)) == rules.PbxPause(False)
    # ended early by the agent, or superseded by a pause or DND
    available = Presence("available", None, at(5))
    assert rules.pbx_push(available, "api", at(5)) == rules.PbxPause(False)
    lunch = Presence("paused", "lunch", at(5))
    assert rules.pbx_push(lunch, "api", at(5)) == rules.PbxPause(True, "lunch")
    assert rules.pbx_push(Presence("dnd", None, at(5)), "api", at(5)) == rules.PbxPause(True, "dnd")
    # what the PBX itself set is never pushed back (no loop)
    assert rules.pbx_push(lunch, "pbx", at(5)) is None
    assert rules.pbx_push(available, "pbx", at(5)) is None


def test_what_the_pbx_is_sent_when_a_wrapup_is_over() -> None:
    wrap = Presence("wrapup", None, T0, at(30))
    # on time: unpaused
    assert rules.wrapup_over(wrap, at(30)) == rules.PbxPause(False)
    # early (the timer's clock ahead of the database's): nothing yet
    assert rules.wrapup_over(wrap, at(29.99)) is None
    # a newer wrap-up still running: its own end will say
    newer = Presence("wrapup", None, at(40), at(70))
    assert rules.wrapup_over(newer, at(50)) is None
    # superseded meanwhile (maybe in an instance that could not push it): what stands now
    assert rules.wrapup_over(Presence("paused", "lunch", at(10)), at(30)) == rules.PbxPause(
        True, "lunch"
    )
    assert rules.wrapup_over(Presence("dnd", None, at(10)), at(30)) == rules.PbxPause(True, "dnd")
    assert rules.wrapup_over(Presence("available", None, at(10)), at(30)) == rules.PbxPause(False)
    assert rules.wrapup_over(None, at(30)) == rules.PbxPause(False)


def test_seconds_per_state_clip_to_the_period() -> None:
    spans = [
        ("available", at(-100), at(10)),
        ("paused", at(10), at(70)),
        ("wrapup", at(70), at(100)),
        ("available", at(100), None),  # still on: counted to the period's end
    ]
    assert rules.seconds_per_state(spans, T0, at(200)) == {
        "available": 10 + 100,
        "paused": 60,
        "wrapup": 30,
    }


def agent(uid: int) -> Agent:
    return Agent(uid, str(100 + uid), Schedule(uid, "UTC", (), ()))


def test_plan_skips_agents_away_even_as_the_responsible_one() -> None:
    duty = [agent(1), agent(2), agent(3)]
    plan = plan_batch([CallerInfo(7, responsible_id=2), None], duty, [], away=[2])
    assert plan.decisions[0].reason == Reason.all_busy and plan.decisions[0].target == ""
    assert plan.round_robin == [0, 1] and plan.candidates == [1, 3]
    everyone = plan_batch([None], duty, ["101"], away=[2, 3])
    assert everyone.round_robin == [] and everyone.decisions[0].reason == Reason.all_busy


def test_period_plan_prorates_months_by_days() -> None:
    plans = {date(2026, 2, 1): Decimal("2800"), date(2026, 3, 1): Decimal("3100")}
    assert period_plan(plans, date(2026, 2, 1), date(2026, 2, 28)) == Decimal("2800.00")
    assert period_plan(plans, date(2026, 2, 1), date(2026, 2, 1)) == Decimal("100.00")
    # 27-28 Feb (2 of 28 days) and 1-3 Mar (3 of 31)
    assert period_plan(plans, date(2026, 2, 27), date(2026, 3, 3)) == Decimal("500.00")
    assert period_plan(plans, date(2026, 4, 1), date(2026, 4, 30)) == Decimal("0.00")


def test_queue_figures_leave_short_abandons_out_of_the_percentages() -> None:
    q = queue_figures("sales", 10, 6, 2, 2, 5, 60.0, 42.0)
    assert q["abandon_percent"] == 25.0  # 2 of the 8 that count
    assert q["service_level_percent"] == 62.5  # 5 of 8
    assert q["asa_seconds"] == 10.0 and q["other_exits"] == 0
    empty = queue_figures("x", 0, 0, 0, 0, 0, 0.0, 0.0)
    assert empty["service_level_percent"] is None and empty["asa_seconds"] is None
    assert percent(1, 3) == 33.3


def test_csv_has_a_header_and_empty_cells_for_none() -> None:
    text = csv_text([{"a": 1, "b": None}, {"a": "x,y", "b": 2}], ["a", "b"])
    assert text == 'a,b\r\n1,\r\n"x,y",2\r\n'
