"""The shapes of the reports and of the supervisors' live board, as GET /api/reports and
GET /api/dashboard answer them. Money is the Decimal written out ("1500.00"), never a float."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CommunicationFigures(BaseModel):
    calls_in: int
    calls_out: int
    answered: int
    missed: int
    talk_seconds: float
    emails_out: int
    emails_in: int
    sms: int
    sms_in: int = 0
    sms_out: int = 0


class Figures(CommunicationFigures):
    """Communications and deals (created, won and lost in the period, with their sums), and the
    sales plan for the period (months prorated by the days covered; None: no plan set) against
    what was won (`won_amount` = `won_sum`)."""

    created: int
    created_sum: str
    won: int
    won_sum: str
    lost: int
    lost_sum: str
    plan_amount: str | None = None
    won_amount: str = "0.00"
    plan_percent: float | None = None


class ManagerFigures(Figures):
    user_id: int | None  # None: nobody's (a missed call, an unassigned deal)
    name: str
    extension: str | None


class LeadSourceFigures(BaseModel):
    lead_source: str  # "unknown" when the deal has none
    deals: int
    amount: str


class ReportOut(BaseModel):
    """`team` and `lead_sources` only for supervisors (absent, not null, for others: the route
    answers with response_model_exclude_unset); `from`/`to` are the period's bounds."""

    # "from" is a keyword: the field is named by its alias, both ways
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: str = Field(alias="from")
    to: str
    per_manager: list[ManagerFigures]
    team: Figures | None = None
    lead_sources: list[LeadSourceFigures] | None = None


class BoardAgent(BaseModel):
    user_id: int
    name: str
    extension: str | None
    role: str
    state: str  # ringing | talking | free | off duty
    on_duty: bool
    since: str | None  # when the state began (ISO), None before the tracker saw the agent
    linkedid: str | None  # the call ringing or talking, if any
    # available | paused | dnd | wrapup (crm_core.presence), since when (None: never set)
    presence: str = "available"
    presence_reason: str | None = None
    presence_since: str | None = None
    wrapup_until: str | None = None


class MissedCall(BaseModel):
    id: int
    phone: str | None
    client_id: int
    client_name: str | None = None
    at: str
    agents_rung: list[str]
    # an answered call with the client (either way) followed it today, and when it began
    called_back: bool = False
    called_back_at: str | None = None


class RecentRecording(BaseModel):
    empty: bool  # an unanswered call's file holds no audio


class RecentCall(BaseModel):
    id: int
    direction: str
    status: str
    phone: str | None
    client_id: int
    at: str
    agent_extension: str | None
    talk_seconds: float | None
    recording: RecentRecording | None


class TodayFigures(CommunicationFigures):
    user_id: int | None
    name: str


class BoardFinishedOut(BaseModel):
    """The board's part a finished call changes (GET /api/dashboard/finished)."""

    at: str
    missed_today: list[MissedCall]
    recent_calls: list[RecentCall]
    today: list[TodayFigures]
    queue_stats: list[QueueFiguresOut] = []


class BoardOut(BaseModel):
    at: str
    # the call tracker's view of each call in progress, as its websocket events carry it (typed
    # with the event catalogue, not here); `queue` adds `position` for callers in a queue
    calls: list[dict[str, Any]]
    queue: list[dict[str, Any]]
    agents: list[BoardAgent]
    missed_today: list[MissedCall]
    recent_calls: list[RecentCall]
    today: list[TodayFigures]
    # today's figures per Asterisk queue (GET /api/reports/queues for today)
    queue_stats: list[QueueFiguresOut] = []


# ---- issue 16: queues, the manager's day, lead sources, lost reasons, presence time ------------


class QueueFiguresOut(BaseModel):
    """One queue, for callers who joined it in the period. `abandoned` leaves out the short
    abandons (hung up within SHORT_ABANDON_SECONDS), counted apart and left out of the
    percentages; `service_level_percent`: answered within SERVICE_LEVEL_SECONDS; `asa_seconds`:
    the average wait of those answered. `callers_waiting`/`longest_wait_now_seconds`: now."""

    queue: str
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    other_exits: int  # left unanswered for somewhere else (timeout, transfer)
    abandon_percent: float | None
    service_level_percent: float | None
    answered_in_service_level: int
    asa_seconds: float | None
    longest_wait_seconds: float
    callers_waiting: int
    longest_wait_now_seconds: float


class QueueReportOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: str = Field(alias="from")
    to: str
    service_level_seconds: float
    short_abandon_seconds: float
    items: list[QueueFiguresOut]


class DayRow(BaseModel):
    user_id: int | None  # None: the total
    name: str
    deals_created: int
    deals_created_sum: str
    deals_cancelled: int
    deals_cancelled_sum: str
    calls_in_answered: int
    calls_in_missed: int
    calls_out_answered: int
    calls_out_missed: int
    emails_in: int
    emails_out: int
    sms_in: int
    sms_out: int
    sales_day: int
    sales_day_sum: str
    sales_month_to_date: int
    sales_month_to_date_sum: str
    plan_month: str | None
    plan_percent_month_to_date: float | None


class DayReportOut(BaseModel):
    date: str
    rows: list[DayRow]
    total: DayRow | None = None  # supervisors only


class LeadSourceRow(BaseModel):
    lead_source: str
    clients: int
    deals: int
    deals_sum: str
    won: int
    won_sum: str
    conversion_percent: float | None


class LostReasonRow(BaseModel):
    stage: str | None  # the stage the deal was in when lost (None: lost before any move)
    reason: str | None
    deals: int
    sum: str


class PresenceTimeRow(BaseModel):
    user_id: int
    name: str
    available_seconds: float
    paused_seconds: float
    dnd_seconds: float
    wrapup_seconds: float


class PeriodRows(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: str = Field(alias="from")
    to: str


class LeadSourcesOut(PeriodRows):
    items: list[LeadSourceRow]


class LostReasonsOut(PeriodRows):
    items: list[LostReasonRow]


class PresenceTimeOut(PeriodRows):
    items: list[PresenceTimeRow]


class HourRow(BaseModel):
    hour: int  # 0-23, company time
    calls_in: int
    calls_out: int
    answered: int
    missed: int
    queue_offered: int
    service_level_percent: float | None


class HourlyOut(BaseModel):
    date: str
    items: list[HourRow]


class ResultsRow(BaseModel):
    """One manager's contact results in the period (crm_core/reports/results_report.py)."""

    user_id: int | None  # None: the team total, or results set by a since-deleted user
    name: str
    contacts: int  # contacts with a result (result records set in the period)
    postponed: int
    refused: int
    offer_sent: int
    sale: int
    wrong_number: int
    other: int
    # (offer_sent + sale) / (contacts - wrong_number), %; None when there is nothing to divide
    effectiveness_percent: float | None
    clients_postponed: int  # clients postponed at least once
    postponements_per_client_avg: float | None  # over clients_postponed
    postponements_per_client_max: int


class ResultsReportOut(PeriodRows):
    items: list[ResultsRow]
    total: ResultsRow | None = None  # supervisors and admins only
