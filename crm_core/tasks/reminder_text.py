"""The reminder email, in the assignee's language (pure); its words are in crm_core/texts.py."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_core.tasks.models import TASK_KINDS
from crm_core.texts import pick_locale as pick_locale  # where the reminders look for it
from crm_core.texts import text


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def reminder_email(
    *,
    locale: str,
    title: str,
    kind: str,
    due_at: datetime | None,
    client_name: str | None,
    goal: str | None,
    timezone: str | None,
    page_url: str,
) -> tuple[str, str]:
    """(subject, body) of a task's reminder; times in the assignee's own time zone."""
    kind_name = text(locale, f"reminder.kind.{kind if kind in TASK_KINDS else 'other'}")
    lines = [f"{kind_name}: {title}"]
    if due_at is not None:
        local = due_at.astimezone(_zone(timezone))
        lines.append(text(locale, "reminder.due", due=local.strftime("%d.%m.%Y %H:%M %Z")))
    else:
        lines.append(text(locale, "reminder.no_due"))
    if client_name:
        lines.append(text(locale, "reminder.client", client=client_name))
    if goal:
        lines.append(text(locale, "reminder.goal", goal=goal))
    lines += ["", text(locale, "reminder.open", url=page_url)]
    return text(locale, "reminder.subject", title=title), "\n".join(lines) + "\n"
