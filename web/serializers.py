"""One serializer per type: handlers never build JSON themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crm_core.clients.models import Client
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal, DealStage, DealStageMove
from crm_core.schedules.rules import Schedule
from crm_core.tasks.models import Task
from crm_core.users.models import User


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def user(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "login": u.login,
        "role": u.role,
        "full_name": u.full_name,
        "extension": u.extension,
        "email": u.email,
        "timezone": u.timezone,
        "is_active": u.is_active,
    }


def user_public(u: User) -> dict[str, Any]:
    """What every signed-in user may know of a colleague: who, and which phone rings them."""
    return {"id": u.id, "full_name": u.full_name, "extension": u.extension}


def client(c: Client) -> dict[str, Any]:
    return {
        "id": c.id,
        "kind": c.kind,
        "name": c.name,
        "company": c.company,
        "phones": [{"number": p.e164, "raw": p.raw, "label": p.label} for p in c.phones],
        "emails": [e.email for e in c.emails],
        "contacts": [
            {"name": p.name, "position": p.position, "phone": p.phone, "email": p.email}
            for p in c.contacts
        ],
        "lead_source": c.lead_source,
        "responsible_id": c.responsible_id,
        "readiness": c.readiness,
        "notes": c.notes,
        "created_at": _iso(c.created_at),
    }


def stage(s: DealStage) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "position": s.position,
        "is_closed": s.is_closed,
        "is_won": s.is_won,
    }


def deal(d: Deal) -> dict[str, Any]:
    return {
        "id": d.id,
        "client_id": d.client_id,
        "title": d.title,
        "amount": str(d.amount),
        "currency": d.currency,
        "responsible_id": d.responsible_id,
        "lead_source": d.lead_source,
        "stage_id": d.stage_id,
        "stage": d.stage.name if "stage" in d.__dict__ and d.stage else None,
        "is_closed": d.closed_at is not None,
        "created_at": _iso(d.created_at),
        "closed_at": _iso(d.closed_at),
        "lost_reason": d.lost_reason,
    }


def stage_move(m: DealStageMove) -> dict[str, Any]:
    return {
        "from_stage_id": m.from_stage_id,
        "to_stage_id": m.to_stage_id,
        "user_id": m.user_id,
        "moved_at": _iso(m.moved_at),
    }


def communication(c: Communication) -> dict[str, Any]:
    extra = c.extra or {}
    out: dict[str, Any] = {
        "id": c.id,
        "kind": c.kind,
        "direction": c.direction,
        "status": c.status,
        "phone": c.phone,
        "email": c.email,
        "client_id": c.client_id,
        "deal_id": c.deal_id,
        "user_id": c.user_id,
        "external_id": c.external_id,
        "occurred_at": _iso(c.occurred_at),
        "answered_at": _iso(c.answered_at),
        "ended_at": _iso(c.ended_at),
        "subject": c.subject,
        "body": c.body,
        "extra": extra,
    }
    if c.kind == "email" and c.direction == "in":
        # None: received before senders were checked; False: the From may be anyone's
        auth = extra.get("sender_auth")
        out["sender_verified"] = bool(auth.get("verified")) if isinstance(auth, dict) else None
    if c.kind == "call":
        out.update(
            direction_name="inbound" if c.direction == "in" else "outbound",
            missed=bool(extra.get("missed", False)),
            agent_extension=c.agent_extension,
            agents_rung=list(extra.get("agents_rung", [])),
            ring_seconds=c.ring_seconds,
            talk_seconds=c.talk_seconds,
            transfers=list(extra.get("transfers", [])),
            legs=list(extra.get("legs", [])),
            hung_up_by=extra.get("hung_up_by"),
            recording=_recording(c.id, extra.get("recording")),
            hold_seconds=extra.get("hold_s"),
        )
    return out


def _recording(communication_id: int, rec: Any) -> dict[str, Any] | None:
    """What a page needs to offer a player: where to ask for its link, whether it holds audio."""
    if not isinstance(rec, dict) or not rec.get("file"):
        return None
    return {
        "link": f"/api/calls/{communication_id}/recording/link",
        "empty": bool(rec.get("empty")),
    }


def task(t: Task, now: datetime | None = None) -> dict[str, Any]:
    return {
        "id": t.id,
        "title": t.title,
        "description": t.description,
        "kind": t.kind,
        "due_at": _iso(t.due_at),
        "assignee_id": t.assignee_id,
        "client_id": t.client_id,
        "deal_id": t.deal_id,
        "communication_id": t.communication_id,
        "done": t.done,
        "done_at": _iso(t.done_at),
        "overdue": bool(now and not t.done and t.due_at and t.due_at < now),
    }


def schedule(s: Schedule) -> dict[str, Any]:
    return {
        "user_id": s.user_id,
        "timezone": s.timezone,
        "intervals": [
            {"weekday": i.weekday, "start": i.start.isoformat(), "end": i.end.isoformat()}
            for i in s.intervals
        ],
        "exceptions": [
            {
                "kind": c.kind,
                "start_date": c.start_date.isoformat(),
                "end_date": c.end_date.isoformat(),
                "start": c.start.isoformat() if c.start else None,
                "end": c.end.isoformat() if c.end else None,
                "note": c.note,
            }
            for c in s.changes
        ],
    }


def page(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}
