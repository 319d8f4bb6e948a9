"""The reminder email's words, in the assignee's language (pure)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_TEXT = {
    "en": {
        "subject": "Reminder: {title}",
        "due": "Due: {due}",
        "no_due": "No due time",
        "client": "Client: {client}",
        "goal": "Goal: {goal}",
        "open": "Open your agenda: {url}",
        "kind": {"callback": "Call back", "meeting": "Meeting", "other": "Task"},
    },
    "ru": {
        "subject": "Напоминание: {title}",
        "due": "Срок: {due}",
        "no_due": "Без срока",
        "client": "Клиент: {client}",
        "goal": "Цель: {goal}",
        "open": "Открыть ежедневник: {url}",
        "kind": {"callback": "Перезвонить", "meeting": "Встреча", "other": "Задача"},
    },
}
LOCALES = frozenset(_TEXT)


def pick_locale(user_locale: str | None, default_locale: str) -> str:
    """The user's own language, else the installation's DEFAULT_LOCALE, else English."""
    for candidate in (user_locale, default_locale):
        if candidate in LOCALES:
            return candidate
    return "en"


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
    t = _TEXT[locale if locale in _TEXT else "en"]
    kinds: dict[str, str] = t["kind"]  # type: ignore[assignment]
    lines = [f"{kinds.get(kind, kinds['other'])}: {title}"]
    if due_at is not None:
        local = due_at.astimezone(_zone(timezone))
        lines.append(str(t["due"]).format(due=local.strftime("%d.%m.%Y %H:%M %Z")))
    else:
        lines.append(str(t["no_due"]))
    if client_name:
        lines.append(str(t["client"]).format(client=client_name))
    if goal:
        lines.append(str(t["goal"]).format(goal=goal))
    lines += ["", str(t["open"]).format(url=page_url)]
    return str(t["subject"]).format(title=title), "\n".join(lines) + "\n"
