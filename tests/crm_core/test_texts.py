"""The server's own words (crm_core/texts.py): both languages complete, parameters filled."""

from __future__ import annotations

import re

import pytest

from crm_core import texts


def test_both_languages_have_the_same_keys_and_parameters() -> None:
    catalogues = texts._TEXT
    assert set(catalogues) == {"ru", "en"}
    assert set(catalogues["ru"]) == set(catalogues["en"])
    for key, english in catalogues["en"].items():
        slots = set(re.findall(r"\{(\w+)\}", english))
        assert set(re.findall(r"\{(\w+)\}", catalogues["ru"][key])) == slots, key


def test_a_deal_title_names_its_source_and_contact() -> None:
    assert (
        texts.deal_title("ru", "outbound call", "+79031234567") == "Исходящий звонок +79031234567"
    )
    assert texts.deal_title("en", "inbound email", "a@b.example") == "Inbound email a@b.example"
    # no contact: the source alone; a source the service does not name: as given, capitalised
    assert texts.deal_title("ru", "inbound SMS", None) == "Входящее SMS"
    assert texts.deal_title("ru", "website", "+7903") == "Website +7903"
    assert texts.lead_source("ru", "website") == "website"


def test_an_unknown_locale_is_english_and_an_unknown_key_is_an_error() -> None:
    assert texts.text("de", "task.missed_call", phone="+1") == "Call back +1: missed call"
    assert texts.text("ru", "task.missed_call", phone="+1") == "Перезвонить +1: пропущенный звонок"
    with pytest.raises(KeyError):
        texts.text("ru", "no.such.key")
