"""A client card over HTTP: what POST and GET /api/clients/{id} give back of what was written."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import UserFactory

pytestmark = pytest.mark.usefixtures("db")


async def test_a_card_reads_back_with_its_phones_emails_and_contacts(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    manager, h = await make_user(role="manager")
    written = {
        "name": "Acme",
        "kind": "company",
        "phones": [{"number": "8 (903) 123-45-67", "label": "office"}],
        "emails": ["sales@acme.example"],
        "contacts": [
            {"name": "Olga", "position": "buyer", "phone": "+79031112233", "email": None},
            {"name": "Ivan"},
        ],
    }
    created = await api.post("/api/clients", json=written, headers=h)
    assert created.status_code == 201, created.text
    card = created.json()
    assert card["phones"] == [
        {"number": "+79031234567", "raw": "8 (903) 123-45-67", "label": "office"}
    ]
    assert card["emails"] == ["sales@acme.example"]
    assert card["contacts"] == [
        {"name": "Olga", "position": "buyer", "phone": "+79031112233", "email": None},
        {"name": "Ivan", "position": None, "phone": None, "email": None},
    ]
    # a manager's own card unless they say otherwise
    assert (card["name"], card["kind"], card["responsible_id"]) == ("Acme", "company", manager.id)
    assert (await api.get(f"/api/clients/{card['id']}", headers=h)).json() == card
