"""The operator's workspace, part 2, end to end (real uvicorn, AMI replay, headless Chromium),
as an operator in Russian and as a manager in English: a new caller's pop never disturbs a card
being edited, a contact result drives the deal, a stage move asks what the close needs."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core.clients.models import Client, ClientPhone
from crm_core.comments.models import CommunicationComment
from crm_core.communications.models import Communication
from crm_core.deals.models import Deal, DealStageMove
from crm_core.results.models import ContactResultRecord
from crm_core.users.models import User
from telephony.testing.replay import ReplayServer
from tests.conftest import UserFactory
from tests.telephony.helpers import split_recording
from tests.web.live import LiveService, chromium_available, sign_in_at_desk
from tests.web.test_operator_e2e import play, settle, stage_id

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Page, expect  # noqa: E402

NEW_NUMBER = "+79031234567"  # the caller of the recorded inbound_abandoned call
PASSWORD = "pw-workflows"
# the role, its login, the profile's language and a word of the page in that language
CASES = {
    "operator-ru": ("operator", "olga101", "ru", "Записать результат"),
    "manager-en": ("manager", "mike101", "en", "Set result"),
}
# the words each language uses for what the tests read: an ended call, an inbound pop
WORDS = {"ru": ("завершён", "Входящий"), "en": ("ended", "Inbound")}


class Who(NamedTuple):
    user: User
    login: str
    word: str  # a word of the page in the profile's language
    locale: str


@pytest.fixture(params=list(CASES))
async def who(request: pytest.FixtureRequest, make_user: UserFactory) -> Who:
    """The user whose phone is extension 101 in the recordings."""
    role, login, locale, word = CASES[request.param]
    user, _ = await make_user(
        role=role,
        extension="101",
        login=login,
        password=PASSWORD,
        full_name="Olga Mike",
        locale=locale,
    )
    return Who(user, login, word, locale)


@pytest.fixture
def ready_before_service(who: Who) -> None:
    """The user at extension 101 exists when the service starts."""


def client_of(user: User, name: str, phone: str) -> Client:
    """A person with one phone, `user` responsible."""
    return Client(
        name=name,
        kind="person",
        readiness=0,
        notes="",
        responsible_id=user.id,
        phones=[ClientPhone(e164=phone, raw=phone, label=None)],
    )


async def seed_client(
    sessions: async_sessionmaker[AsyncSession],
    *,
    user: User,
    name: str = "Anna Alpha",
    phone: str = "+79160000001",
    deal: str = "Chairs",
    amount: str = "1000",
) -> tuple[int, int]:
    """A client of `user` with an open deal at the second stage: (client id, deal id)."""
    async with sessions() as s:
        client = client_of(user, name, phone)
        s.add(client)
        await s.flush()
        row = Deal(
            client_id=client.id,
            title=deal,
            amount=Decimal(amount),
            stage_id=2,
            responsible_id=user.id,
        )
        s.add(row)
        await s.commit()
        return client.id, row.id


async def sign_in_and_open_anna(
    page: Page, live: LiveService, login: str, word: str, name: str = "Anna Alpha"
) -> None:
    await sign_in_at_desk(page, live, (login, PASSWORD))
    await expect(page.locator("#cr-save")).to_have_text(
        word
    )  # the page speaks the profile's language
    await page.fill("#find-q", name)
    await page.click("[data-testid=find-submit]")
    await page.locator("#find-results li").first.click()
    await expect(page.locator("#client-name")).to_have_value(name)


@pytest.fixture
async def anna(sessions: async_sessionmaker[AsyncSession], who: Who) -> tuple[int, int]:
    """Anna Alpha, `who`'s client, with her open deal Chairs: (client id, deal id)."""
    return await seed_client(sessions, user=who.user)


@pytest.fixture
async def at_anna(service: LiveService, page: Page, who: Who, anna: tuple[int, int]) -> None:
    """`who` signed in on `page`, Anna's card open."""
    await sign_in_and_open_anna(page, service, who.login, who.word)


@pytest.mark.usefixtures("at_anna")
async def test_a_new_callers_pop_waits_beside_a_card_being_edited(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    sessions: async_sessionmaker[AsyncSession],
    anna: tuple[int, int],
) -> None:
    anna_id, _ = anna
    await page.fill("#note-text", "Meant for Anna")

    # a call from a number nobody knows: the pop shows beside, Anna's card and note stay
    await play(replay, "inbound_abandoned", speed=0)
    await expect(page.locator("#pop-number")).to_have_text(NEW_NUMBER)
    await expect(page.locator("#pop-new")).to_be_visible()
    await expect(page.locator("#pop-beside")).to_be_visible()
    await expect(page.locator("#pop-beside")).to_contain_text("Anna Alpha")
    await expect(page.locator("#client-name")).to_have_value("Anna Alpha")
    await expect(page.locator("#note-text")).to_have_value("Meant for Anna")
    await settle(service, replay)
    # the note saved now lands on Anna, and then nothing unsaved is left
    await page.click("#note-save")
    await expect(page.locator("#note-text")).to_have_value("")
    await expect(page.locator("#pop-beside")).to_be_hidden()
    async with sessions() as s:
        note = await s.scalar(select(Communication).where(Communication.body == "Meant for Anna"))
        assert note is not None and note.kind == "note" and note.client_id == anna_id
        caller = await s.scalar(
            select(Client).join(ClientPhone).where(ClientPhone.e164 == NEW_NUMBER)
        )
        assert caller is not None and caller.id != anna_id
        caller_id = caller.id

    # something typed again, then the switch: the caller's card, without Anna's draft
    await page.fill("#note-text", "Draft for Anna")
    await expect(page.locator("#pop-beside")).to_be_visible()
    await page.click("#pop-switch")
    await expect(page.locator("#client-name")).to_have_value(NEW_NUMBER)
    await expect(page.locator("#client-id")).to_have_text(f"#{caller_id}")
    await expect(page.locator("#note-text")).to_have_value("")
    # the pop's quick note goes to the caller
    await page.fill("#pop-quick-text", "Wants a price list")
    await page.click("#pop-add-note")
    await expect(page.locator("#pop-quick-text")).to_have_value("")
    # and so do its quick task and new deal
    await page.fill("#pop-quick-text", "Send the price list")
    await page.click("#pop-add-task")
    await expect(page.locator("#pop-quick-text")).to_have_value("")
    deals = page.locator("#pop-deals li[data-deal-id]")
    before = await deals.count()
    await page.fill("#pop-quick-text", "Forty chairs")
    await page.click("#pop-add-deal")
    await expect(deals).to_have_count(before + 1)
    await expect(page.locator("#pop-deals")).to_contain_text("Forty chairs")
    # back on Anna's card, her draft is there again; nothing of it was saved anywhere
    await page.fill("#find-q", "Anna Alpha")
    await page.click("[data-testid=find-submit]")
    await page.locator("#find-results li").first.click()
    await expect(page.locator("#client-name")).to_have_value("Anna Alpha")
    await expect(page.locator("#note-text")).to_have_value("Draft for Anna")
    async with sessions() as s:
        quick = await s.scalar(
            select(Communication).where(Communication.body == "Wants a price list")
        )
        assert quick is not None and quick.client_id == caller_id
        drafts = await s.scalars(
            select(Communication).where(Communication.body == "Draft for Anna")
        )
        assert drafts.all() == []


@pytest.mark.usefixtures("at_anna")
async def test_a_refusal_set_on_a_card_moves_the_deal_to_lost_with_its_reason(
    page: Page, sessions: async_sessionmaker[AsyncSession], who: Who, anna: tuple[int, int]
) -> None:
    user = who.user
    anna_id, deal_id = anna
    lost = await stage_id(sessions, "Lost")
    await expect(page.locator("#deal-id")).to_have_text(f"#{deal_id}")
    refused = await page.locator("#cr-select option[data-kind=refused]").get_attribute("value")
    assert refused
    await page.select_option("#cr-select", refused)
    await page.click("#cr-save")
    await expect(page.locator("#ask-dialog")).to_be_visible()
    await page.fill("#ask-reason", "Too expensive")
    await page.click("[data-testid=ask-ok]")
    await expect(page.locator("#ask-dialog")).to_have_count(0)
    await expect(page.locator("#deal-stage")).to_have_value(str(lost))
    async with sessions() as s:
        deal = await s.get(Deal, deal_id)
        assert deal is not None
        assert (deal.stage_id, deal.lost_reason) == (lost, "Too expensive")
        assert deal.closed_at is not None
        move = await s.scalar(
            select(DealStageMove).where(
                DealStageMove.deal_id == deal_id, DealStageMove.to_stage_id == lost
            )
        )
        assert move is not None and move.lost_reason == "Too expensive" and move.user_id == user.id
        record = await s.scalar(
            select(ContactResultRecord).where(ContactResultRecord.client_id == anna_id)
        )
        assert record is not None
        assert (record.kind, record.reason, record.deal_id) == ("refused", "Too expensive", deal_id)


async def test_won_from_the_stage_picker_asks_the_amount(
    service: LiveService,
    page: Page,
    sessions: async_sessionmaker[AsyncSession],
    who: Who,
) -> None:
    _, deal_id = await seed_client(sessions, user=who.user, amount="0")
    won = await stage_id(sessions, "Won")
    await sign_in_and_open_anna(page, service, who.login, who.word)
    await expect(page.locator("#deal-id")).to_have_text(f"#{deal_id}")
    # cancelled: nothing moves
    await page.select_option("#deal-stage", str(won))
    await page.click("#deal-stage-save")
    await expect(page.locator("#ask-amount")).to_be_visible()
    await page.click("[data-testid=ask-cancel]")
    await expect(page.locator("#ask-dialog")).to_have_count(0)
    await expect(page.locator("#deal-stage")).to_have_value("2")
    # with the amount: Won
    await page.select_option("#deal-stage", str(won))
    await page.click("#deal-stage-save")
    await page.fill("#ask-amount", "25000")
    await page.click("[data-testid=ask-ok]")
    await expect(page.locator("#deal-status")).to_contain_text("Won")
    await expect(page.locator("#deal-amount")).to_contain_text("25")
    async with sessions() as s:
        deal = await s.get(Deal, deal_id)
        assert deal is not None
        assert (deal.stage_id, deal.amount) == (won, Decimal("25000"))
        assert deal.closed_at is not None


@pytest.mark.usefixtures("at_anna")
async def test_missed_calls_recent_calls_comments_and_linking_a_new_number(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    sessions: async_sessionmaker[AsyncSession],
    who: Who,
    anna: tuple[int, int],
) -> None:
    locale = who.locale
    anna_id, _ = anna

    # a call from an unknown number rings out: the pop says inbound and lists the open deals
    await play(replay, "inbound_abandoned", speed=0)
    await settle(service, replay)
    await expect(page.locator("#pop-direction")).to_have_text(WORDS[locale][1])
    await expect(page.locator("#pop-deals li[data-deal-id]")).to_have_count(1)
    # it is in the missed calls to act on, with its try; "Call back" dials it
    missed = page.locator("#missed li[data-client-id]")
    await expect(missed).to_have_count(1)
    await expect(missed.first).to_contain_text(NEW_NUMBER)
    await expect(missed.first.locator("[data-testid=missed-tries]")).to_contain_text("1")
    await missed.first.locator("[data-testid=missed-call]").click()
    async with asyncio.timeout(10):
        while not replay.originates:
            await asyncio.sleep(0.05)
    assert replay.originates[0]["Exten"] == NEW_NUMBER.lstrip("+")

    # recent calls come from the server (rows named db:<id>), also after a reload
    await page.reload()
    recent = page.locator("#calls li").first
    await expect(recent).to_contain_text(NEW_NUMBER)
    await expect(recent).to_have_attribute("data-linkedid", re.compile("^db:"))

    # a comment on the call, in the new card's history
    await recent.click()
    await expect(page.locator("#client-name")).to_have_value(NEW_NUMBER)
    call_item = page.locator("#timeline .tl-item[data-kind=call]").first
    await call_item.locator("[data-testid=comments-toggle]").click()
    await call_item.locator("[data-testid=comment-text]").fill("Called from the car")
    await call_item.locator("[data-testid=comment-save]").click()
    await expect(call_item.locator("[data-testid=comments]")).to_contain_text("Called from the car")
    async with sessions() as s:
        call = await s.scalar(select(Communication).where(Communication.kind == "call"))
        assert call is not None
        comment = await s.scalar(select(CommunicationComment))
        assert comment is not None
        assert (comment.communication_id, comment.body) == (call.id, "Called from the car")
        new_id = call.client_id

    # a result on that call: postponed, with when and why -> a task, recorded on the call
    postponed = await call_item.locator(
        "[data-testid=tl-result-select] option[data-kind=postponed]"
    ).get_attribute("value")
    assert postponed
    await call_item.locator("[data-testid=tl-result-select]").select_option(postponed)
    await call_item.locator("[data-testid=tl-result-save]").click()
    await page.fill("#ask-date", "2031-03-04T15:30")
    await page.fill("#ask-reason", "Busy until March")
    await page.click("[data-testid=ask-ok]")
    await expect(page.locator("#ask-dialog")).to_have_count(0)
    await expect(page.locator("#tasks li[data-kind=other]")).to_have_count(1)  # the task it made
    async with sessions() as s:
        record = await s.scalar(
            select(ContactResultRecord).where(ContactResultRecord.communication_id == call.id)
        )
        assert record is not None
        assert (record.kind, record.reason, record.client_id) == (
            "postponed",
            "Busy until March",
            new_id,
        )
        assert record.task_id is not None

    # the number is Anna's after all: the new card merges into hers, with its call
    await page.click("#merge-box summary")
    await page.fill("#merge-q", "Anna Alpha")
    await page.click("#merge-find")
    await page.locator("#merge-results li[data-client-id] [data-testid=merge-into]").first.click()
    await expect(page.locator("#client-name")).to_have_value("Anna Alpha")
    await expect(page.locator("#timeline .tl-item[data-kind=call]")).to_have_count(1)
    async with sessions() as s:
        assert await s.get(Client, new_id) is None
        call = await s.scalar(select(Communication).where(Communication.kind == "call"))
        assert call is not None and call.client_id == anna_id


async def test_an_outbound_call_that_ended_no_longer_reads_on_the_call(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    sessions: async_sessionmaker[AsyncSession],
    who: Who,
) -> None:
    async with sessions() as s:
        s.add(client_of(who.user, "Ivan Petrov", "+79161234567"))
        await s.commit()
    await sign_in_and_open_anna(page, service, who.login, who.word, "Ivan Petrov")
    await play(replay, "click_to_call", speed=0)  # 101 calls Ivan, they talk, it ends
    await settle(service, replay)
    status = page.locator("#client-status")
    await expect(status).to_contain_text(WORDS[who.locale][0])
    await expect(status).to_contain_text("+79161234567")


@pytest.mark.parametrize(
    ("result", "amount", "asked", "answer", "closed_as"),
    [
        ("deal won", "0", "#ask-amount", "5000", "Won"),
        ("not interested", "900", "#ask-reason", "No budget", "Lost"),
    ],
)
async def test_a_result_in_the_pop_closes_the_deal_asking_what_the_close_needs(
    service: LiveService,
    replay: ReplayServer,
    page: Page,
    sessions: async_sessionmaker[AsyncSession],
    who: Who,
    result: str,
    amount: str,
    asked: str,
    answer: str,
    closed_as: str,
) -> None:
    _, deal_id = await seed_client(
        sessions,
        user=who.user,
        name="Ivan Petrov",
        phone="+79161234567",
        deal="Desks",
        amount=amount,
    )
    closed = await stage_id(sessions, closed_as)
    await sign_in_and_open_anna(page, service, who.login, who.word, "Ivan Petrov")
    await play(replay, "inbound_answered", speed=0)  # Ivan calls 101
    await expect(page.locator("#pop-name")).to_have_text("Ivan Petrov")
    await page.select_option("#result-select", result)
    await page.click("#result-save")
    await page.fill(asked, answer)
    await page.click("[data-testid=ask-ok]")
    await expect(page.locator("#result-select")).to_have_value("")  # reset once saved
    await expect(page.locator("#pop-deal-stage")).to_have_text(closed_as)
    async with sessions() as s:
        saved = await s.get(Deal, deal_id)
        assert saved is not None and saved.stage_id == closed
        if closed_as == "Won":
            assert saved.amount == Decimal(answer)
        else:
            assert (saved.lost_reason, saved.amount) == (answer, Decimal(amount))
        note = await s.scalar(select(Communication).where(Communication.kind == "note"))
        assert note is not None and note.extra == {"result": result}


@pytest.mark.usefixtures("at_anna")
async def test_the_pop_shows_the_direction_and_a_ticking_talk_timer(
    replay: ReplayServer, page: Page, who: Who, tmp_path: Path
) -> None:
    # a call from a new number, answered and still going on
    head, _ = split_recording("inbound_answered", "BridgeEnter", tmp_path)
    await replay.play([head], speed=0)
    await expect(page.locator("#pop")).to_have_attribute("data-state", "answered")
    await expect(page.locator("#pop-direction")).to_have_text(WORDS[who.locale][1])
    timer = page.locator("#pop-timer")
    talk = re.compile(r"(разговор|talk) \d+:\d\d$")
    await expect(timer).to_have_text(talk)
    shown = await timer.text_content()
    await expect(timer).not_to_have_text(shown or "")  # it ticks
    await expect(timer).to_have_text(talk)
