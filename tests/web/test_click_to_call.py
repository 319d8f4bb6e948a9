"""Click-to-call from a card: the Originate Asterisk receives, and what is refused."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from telephony.testing.replay import ReplayServer
from tests.conftest import UserFactory
from tests.telephony.pbx import ami_settings
from web.container import Container

pytestmark = pytest.mark.usefixtures("db")


async def test_click_to_call_rings_the_agent_then_the_client_on_the_deal(
    api: httpx.AsyncClient, make_user: UserFactory, container: Container
) -> None:
    server = ReplayServer()
    await server.start()
    container.settings.telephony = ami_settings(server.port)
    try:
        manager, h = await make_user(role="manager", extension="101")
        client = await api.post(
            "/api/clients", json={"name": "Ivan", "phones": ["8 916 123-45-67"]}, headers=h
        )
        r = await api.post(
            "/api/calls/originate", json={"client_id": client.json()["id"]}, headers=h
        )
        assert r.status_code == 202, r.text
        deal_id = r.json()["deal_id"]
        async with asyncio.timeout(10):
            while not server.originates:
                await asyncio.sleep(0.02)
        sent = server.originates[0]
        assert sent["Channel"] == "PJSIP/101"
        assert sent["Context"] == "crm-outbound"
        assert sent["Exten"] == "79161234567"
        assert sent["Async"] == "true"
        assert sent["Variable"] == f"CRM_DEAL_ID={deal_id},CRM_USER_ID={manager.id}"
        # the card had no open deal: the call opened one, titled in DEFAULT_LOCALE (ru here)
        deal = (await api.get(f"/api/deals/{deal_id}", headers=h)).json()
        assert (deal["client_id"], deal["responsible_id"]) == (client.json()["id"], manager.id)
        assert deal["title"] == "Исходящий звонок +79161234567"
    finally:
        await server.close()


async def test_click_to_call_refusals(api: httpx.AsyncClient, make_user: UserFactory) -> None:
    _, no_ext = await make_user(role="manager")
    _, h = await make_user(role="manager", extension="105")
    c = await api.post("/api/clients", json={"name": "NoPhone", "phones": []}, headers=h)
    cid = c.json()["id"]
    r = await api.post("/api/calls/originate", json={"client_id": cid}, headers=no_ext)
    assert r.status_code == 422 and "extension" in r.text
    r = await api.post("/api/calls/originate", json={"client_id": cid}, headers=h)
    assert r.status_code == 422 and "no phone" in r.text
    r = await api.post(
        "/api/calls/originate", json={"client_id": cid, "phone": "+79161234567"}, headers=h
    )
    assert r.status_code == 422
    assert (await api.post("/api/calls/originate", json={"client_id": cid})).status_code == 401
