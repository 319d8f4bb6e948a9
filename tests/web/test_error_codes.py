"""Every error answer carries a stable machine `code` beside its English `detail` (which stays
as it was): the pages translate the code (web/pages/static/lib/i18n/errors.*.js)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import UserFactory
from tests.deals_pipeline import pipeline_kept

pytestmark = pytest.mark.usefixtures("db")

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = ROOT / "web" / "pages" / "static" / "lib" / "i18n"
_BODY = re.compile(r"^\s*export default\s*(\{.*\})\s*;?\s*$", re.S)
# code="area.what" on a raise; f"stage.keep_{kind}" for each kind a stage can have
_CODE = re.compile(r"""\bcode=(?:f?)["']([a-z_.{}\[\]0-9]+)["']""")


@pytest.fixture
async def kept(db: AsyncEngine) -> AsyncIterator[None]:
    async with pipeline_kept(db):
        yield


def _catalogue(lang: str) -> dict[str, Any]:
    match = _BODY.match((CATALOGUES / f"errors.{lang}.js").read_text("utf-8"))
    assert match
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def _codes_raised() -> set[str]:
    codes: set[str] = set()
    for package in ("crm_core", "web", "telephony", "notifier"):
        for path in (ROOT / package).rglob("*.py"):
            for code in _CODE.findall(path.read_text("utf-8")):
                if "{" in code:  # stage.keep_{missing[0]}: one per stage kind
                    codes |= {re.sub(r"\{.*\}", kind, code) for kind in ("open", "won", "lost")}
                else:
                    codes.add(code)
    return codes


def test_every_code_the_server_raises_has_words_in_both_languages() -> None:
    codes = _codes_raised()
    assert {"deal.lost_reason_required", "deal.won_amount_required", "stage.keep_lost"} <= codes
    # the codes web/errors.py gives by class or status, and its own
    codes |= {"not_found", "forbidden", "conflict", "invalid", "validation", "unauthorized"}
    codes |= {"throttled", "unavailable", "internal", "invalid_value", "error"}
    for lang in ("ru", "en"):
        known = {k.removeprefix("errors.") for k in _catalogue(lang)}
        assert not codes - known, f"{lang}: no words for {sorted(codes - known)}"


async def _stage_ids(api: httpx.AsyncClient, h: dict[str, str]) -> dict[str, int]:
    stages = (await api.get("/api/stages", headers=h)).json()
    return {s["kind"]: s["id"] for s in reversed(stages)}


async def test_the_deal_stage_rules_answer_their_codes(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, h = await make_user(role="manager")
    _, other = await make_user(role="manager")
    client = await api.post("/api/clients", json={"name": "Acme", "phones": []}, headers=h)
    deal = await api.post(
        "/api/deals", json={"client_id": client.json()["id"], "title": "Boxes"}, headers=h
    )
    url = f"/api/deals/{deal.json()['id']}/stage"
    kinds = await _stage_ids(api, h)

    lost = await api.post(url, json={"stage_id": kinds["lost"]}, headers=h)
    assert lost.status_code == 422
    assert lost.json() == {
        "detail": "a move to a lost stage needs a lost_reason",
        "code": "deal.lost_reason_required",
    }
    won = await api.post(url, json={"stage_id": kinds["won"]}, headers=h)
    assert (won.status_code, won.json()["code"]) == (422, "deal.won_amount_required")
    assert won.json()["detail"] == "a move to a won stage needs an amount: the deal has none"

    missing = await api.post("/api/deals/999999/stage", json={"stage_id": 1}, headers=h)
    assert (missing.status_code, missing.json()["code"]) == (404, "deal.not_found")
    assert missing.json()["detail"] == "deal 999999 not found"

    theirs = await api.post(
        url, json={"stage_id": kinds["lost"], "lost_reason": "x"}, headers=other
    )
    assert (theirs.status_code, theirs.json()["code"]) == (403, "deal.not_yours")


@pytest.mark.usefixtures("kept")
async def test_a_conflict_names_its_code_and_params(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, admin = await make_user(role="admin")
    first = await api.post(
        "/api/lists/lost-reasons", json={"name": "Дорого и долго"}, headers=admin
    )
    assert first.status_code == 201, first.text
    again = await api.post(
        "/api/lists/lost-reasons", json={"name": "Дорого и долго"}, headers=admin
    )
    assert again.status_code == 409
    assert again.json() == {
        "detail": "the list already has 'Дорого и долго'",
        "code": "choice.taken",
        "params": {"name": "Дорого и долго"},
    }


async def test_validation_and_http_errors_have_codes(
    api: httpx.AsyncClient, make_user: UserFactory
) -> None:
    _, h = await make_user(role="manager")
    bad = await api.post("/api/deals", json={"title": "x" * 1000}, headers=h)
    assert bad.status_code == 422
    body = bad.json()
    assert body["code"] == "validation"
    # FastAPI's list stays, each problem with the type the pages translate
    types = {(tuple(p["loc"]), p["type"]) for p in body["detail"]}
    assert (("body", "client_id"), "missing") in types
    assert (("body", "title"), "string_too_long") in types

    anonymous = await api.get("/api/deals/board")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
    admin_only = await api.post("/api/lists/lost-reasons", json={"name": "Другое"}, headers=h)
    assert (admin_only.status_code, admin_only.json()["code"]) == (403, "forbidden")
