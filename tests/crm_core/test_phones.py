from __future__ import annotations

import phonenumbers
import pytest
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

from crm_core.phones import InvalidPhone, lookup_key, normalize_phone, try_normalize_phone


@pytest.mark.parametrize(
    "raw",
    [
        "89031234567",
        "79031234567",
        "+79031234567",
        "+7 (903) 123-45-67",
        "8 903 123 45 67",
        "8-903-123-45-67",
        "8(903)1234567",
        " +7 903 123-45-67 ",
        "+7 903 123 45 67 ext. 12",
        "8 (903) 123-45-67 доб. 5",
        "+7.903.123.45.67",
    ],
)
def test_russian_forms_are_one_number(raw: str) -> None:
    assert normalize_phone(raw, "RU") == "+79031234567"


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(495) 765-43-21", "RU", "+74957654321"),
        ("+1 650 253 0000", "RU", "+16502530000"),
        ("+44 20 7946 0958", "RU", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+49 30 901820", "RU", "+4930901820"),
        ("(650) 253-0000", "US", "+16502530000"),
    ],
)
def test_foreign_and_regional_numbers(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("hello", "unexpected characters"),
        ("+7 903 ABC 45 67", "unexpected characters"),
        ("123", "too short"),
        ("+7903123456789999", "not a valid phone number"),
        ("+999 123 456 789", "not a"),
        ("'; DROP TABLE clients; --", "unexpected characters"),
    ],
)
def test_garbage_is_rejected_with_a_clear_error(raw: str, why: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(raw, "RU")
    assert why in str(info.value)


def test_try_normalize_gives_none_for_non_numbers() -> None:
    assert try_normalize_phone("<unknown>") is None
    assert try_normalize_phone(None) is None
    assert try_normalize_phone("89161234567") == "+79161234567"


def _written_forms() -> list[tuple[str, str]]:
    """Example numbers of every region and type, in the forms a caller ID may take."""
    forms: list[tuple[str, str]] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        metadata = PhoneMetadata.metadata_for_region(region)
        prefix = (metadata.national_prefix if metadata else None) or ""
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.VOIP):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
            cc = str(number.country_code)
            national = e164[1 + len(cc) :]
            forms += [(e164, region), ("+" + cc + prefix + national, region)]
            forms += [(phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL), region)]
            forms += [(phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL), "RU")]
    return forms


def test_lookup_key_is_the_normalised_number_wherever_there_is_one() -> None:
    """The router's cheap key equals normalize_phone's E.164 for every number it accepts.

    Stored numbers are normalize_phone's output, so this is what makes the router find exactly
    the clients normalize_phone would: the canonical `+<digits>` shortcut included, and numbers
    with a national prefix written after the country code (`+7 8 903…`), which must not take it.
    """
    forms = [
        *_written_forms(),
        ("89031234567", "RU"),
        ("79031234567", "RU"),
        ("+789031234567", "RU"),
        ("+7 903 123 45 67 ext. 12", "RU"),
        ("8 (903) 123-45-67 доб. 5", "RU"),
    ]
    valid = 0
    for raw, region in forms:
        expected = try_normalize_phone(raw, region)
        if expected is not None:
            valid += 1
            assert lookup_key(raw, region) == expected, (raw, region)
    assert valid > 700  # the examples really were numbers
    assert lookup_key("+789031234567") == "+79031234567"  # the parser's path, not the shortcut
    assert lookup_key("anonymous") is None and lookup_key("") is None
