from __future__ import annotations

import pytest

from crm_core.phones import InvalidPhone, normalize_phone, try_normalize_phone


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
