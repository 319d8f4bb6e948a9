"""Sign-out and revocation in a real browser: the page's Sign out button ends the token on the
server, and a user disabled by an admin is thrown out of the workspace they have open."""

from __future__ import annotations

import asyncio

import httpx
from playwright.async_api import expect

from crm_core.users.models import User
from tests.conftest import UserFactory
from tests.web.conftest import OPERATOR
from tests.web.live import Contexts, live_service, sign_in_at_desk
from web.container import Container


async def test_sign_out_ends_the_token_and_disabling_closes_the_other_page(
    container: Container, pages: Contexts, operator: User, make_user: UserFactory
) -> None:
    _, admin = await make_user(role="admin")
    async with live_service(container) as live, httpx.AsyncClient(base_url=live.url) as http:
        laptop, phone = await pages.page(), await pages.page()
        for page in (laptop, phone):
            await sign_in_at_desk(page, live, OPERATOR)
        laptop_token = await laptop.evaluate("localStorage.getItem('crm_token')")
        phone_token = await phone.evaluate("localStorage.getItem('crm_token')")
        assert laptop_token and phone_token and laptop_token != phone_token

        await laptop.click("[data-testid=logout]")
        await laptop.wait_for_url(f"{live.url}/")
        await expect(laptop.locator("#login-form")).to_be_visible()
        bearer = {"Authorization": f"Bearer {laptop_token}"}
        async with asyncio.timeout(10):
            while (await http.get("/api/auth/me", headers=bearer)).status_code != 401:
                await asyncio.sleep(0.05)  # the page's sign-out is fire-and-forget
        # the other device is still signed in and connected
        await expect(phone.locator("#conn")).to_have_attribute("data-state", "open")

        r = await http.patch(f"/api/users/{operator.id}", json={"is_active": False}, headers=admin)
        assert r.status_code == 200
        # its socket is closed with 4401 and the page signs out by itself
        await phone.wait_for_url(f"{live.url}/")
        await expect(phone.locator("#login-form")).to_be_visible()
        assert await phone.evaluate("localStorage.getItem('crm_token')") is None
