"""Phone numbers: every written form of one number becomes one E.164 string."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

_ALLOWED = re.compile(r"^[\d\s()+\-./]*(?:(?:ext\.?|x|доб\.?|#)\s*\d{1,6})?$", re.IGNORECASE)


class InvalidPhone(ValueError):
    """A string that is not a dialable phone number; the message says why."""


@lru_cache(maxsize=65536)
def normalize_phone(raw: str, region: str = "RU") -> str:
    """E.164 for any written form: "8 (903) 123-45-67", "79031234567", "+7 903 1234567" …

    An extension ("ext. 12", "доб. 12") is dropped: the card stores the line, not the desk.
    Raises InvalidPhone with a clear message for anything else.
    """
    text = (raw or "").strip()
    if not text:
        raise InvalidPhone("phone number is empty")
    if not _ALLOWED.match(text):
        raise InvalidPhone(f"{raw!r} is not a phone number: unexpected characters")
    digits = re.sub(r"\D", "", text.split("доб")[0])
    if len(digits) < 5:
        raise InvalidPhone(f"{raw!r} is too short to be a phone number")
    candidate = re.sub(r"(?i)доб\.?", "ext.", text)
    # Russian trunk habit: a bare "7XXXXXXXXXX" (11 digits, no +) means +7, as "8XXXXXXXXXX" does
    if region.upper() == "RU" and re.fullmatch(r"7\d{10}", re.sub(r"\D", "", candidate)):
        candidate = "+" + re.sub(r"\D", "", candidate)
    try:
        number = phonenumbers.parse(candidate, region.upper())
    except NumberParseException as exc:
        raise InvalidPhone(f"{raw!r} is not a phone number: {exc._msg}") from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"{raw!r} is not a valid phone number for region {region.upper()}")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def try_normalize_phone(raw: str | None, region: str = "RU") -> str | None:
    """E.164, or None for anything that is not a phone (anonymous, 'unknown', garbage)."""
    if not raw:
        return None
    try:
        return normalize_phone(raw, region)
    except InvalidPhone:
        return None
