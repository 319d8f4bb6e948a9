"""The words the service itself writes into records people read (pure).

Shared records (a deal opened by a call, a callback task) are written in the installation's
DEFAULT_LOCALE (crm_core settings `default_locale`), the language its stage and list names are
seeded in; a message to one person in their own `users.locale` (see `pick_locale`). Callers pass
the locale: nothing here reads settings.
"""

from __future__ import annotations

from typing import Final, Literal

# The languages the pages, messages and e-mails are written in.
Locale = Literal["ru", "en"]

# "en" is the schema's own language (the migrations seed English when given no locale)
FALLBACK: Final[Locale] = "en"

_TEXT: Final[dict[str, dict[str, str]]] = {
    "en": {
        # a lead source the service names itself (client and deal `lead_source`)
        "lead_source.inbound call": "Inbound call",
        "lead_source.outbound call": "Outbound call",
        "lead_source.inbound SMS": "Inbound SMS",
        "lead_source.outbound SMS": "Outbound SMS",
        "lead_source.inbound email": "Inbound email",
        "lead_source.outbound email": "Outbound email",
        # the title of a deal a contact opened: its source and the number or address
        "deal.title": "{source} {contact}",
        "task.missed_call": "Call back {phone}: missed call",
        # a task's reminder e-mail (crm_core/tasks/reminder_text.py)
        "reminder.subject": "Reminder: {title}",
        "reminder.due": "Due: {due}",
        "reminder.no_due": "No due time",
        "reminder.client": "Client: {client}",
        "reminder.goal": "Goal: {goal}",
        "reminder.open": "Open your agenda: {url}",
        "reminder.kind.callback": "Call back",
        "reminder.kind.meeting": "Meeting",
        "reminder.kind.other": "Task",
    },
    "ru": {
        "lead_source.inbound call": "Входящий звонок",
        "lead_source.outbound call": "Исходящий звонок",
        "lead_source.inbound SMS": "Входящее SMS",
        "lead_source.outbound SMS": "Исходящее SMS",
        "lead_source.inbound email": "Входящее письмо",
        "lead_source.outbound email": "Исходящее письмо",
        "deal.title": "{source} {contact}",
        "task.missed_call": "Перезвонить {phone}: пропущенный звонок",
        "reminder.subject": "Напоминание: {title}",
        "reminder.due": "Срок: {due}",
        "reminder.no_due": "Без срока",
        "reminder.client": "Клиент: {client}",
        "reminder.goal": "Цель: {goal}",
        "reminder.open": "Открыть ежедневник: {url}",
        "reminder.kind.callback": "Перезвонить",
        "reminder.kind.meeting": "Встреча",
        "reminder.kind.other": "Задача",
    },
}
LOCALES: Final = frozenset(_TEXT)


def pick_locale(user_locale: str | None, default_locale: str) -> str:
    """The user's own language, else the installation's DEFAULT_LOCALE, else English."""
    for candidate in (user_locale, default_locale):
        if candidate in LOCALES:
            return candidate
    return FALLBACK


def text(locale: str, key: str, **params: object) -> str:
    """The text of `key` in `locale` (English when the locale is unknown), "{name}" filled.

    A missing key is a programming error (tests/crm_core/test_texts.py checks both languages
    have the same keys), so it raises KeyError rather than writing a key into a record."""
    catalogue = _TEXT.get(locale, _TEXT[FALLBACK])
    return catalogue[key].format(**params)


def lead_source(locale: str, source: str) -> str:
    """A lead source the service names ("inbound call") in words; any other value as given."""
    key = f"lead_source.{source}"
    return text(locale, key) if key in _TEXT[FALLBACK] else source


def deal_title(locale: str, source: str, contact: str | None) -> str:
    """The title of a deal opened by a contact: "Inbound call +79161234567"."""
    words = lead_source(locale, source)
    words = words[:1].upper() + words[1:]
    return text(locale, "deal.title", source=words, contact=contact or "").strip()
