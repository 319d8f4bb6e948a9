"""Deals in the domain: the stage rules, the history, the admins' pipeline and lists, the board,
and the names a fresh install seeds in DEFAULT_LOCALE."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm_core.clients.models import Client
from crm_core.communications.models import Communication
from crm_core.db import _EVENTS_KEY, make_engine
from crm_core.deals import board as board_view
from crm_core.deals import choices, pipeline, repository, service
from crm_core.deals.board import period
from crm_core.deals.models import Deal, DealStage, DealStageMove
from crm_core.deals.schemas import (
    Board,
    ChoiceCreate,
    DealCreate,
    DealUpdate,
    Order,
    StageCreate,
    StageMove,
    StageUpdate,
)
from crm_core.errors import Conflict, Forbidden, Invalid, NotFound
from crm_core.events.types import DealChanged, DealStageChanged
from crm_core.migrate import upgrade
from crm_core.users.models import User
from tests.conftest import UserFactory
from tests.deals_pipeline import pipeline_kept


@pytest.fixture
async def kept(db: AsyncEngine) -> AsyncIterator[None]:
    async with pipeline_kept(db):
        yield


async def _stage(session: AsyncSession, kind: str) -> DealStage:
    return next(s for s in await repository.stages(session) if s.kind == kind)


async def _client(session: AsyncSession, name: str = "Acme") -> Client:
    client = Client(name=name)
    session.add(client)
    await session.flush()
    return client


async def _user(make_user: UserFactory, session: AsyncSession, role: str) -> User:
    made, _ = await make_user(role=role, full_name=f"{role.title()} Person")
    found = await session.get(User, made.id)
    assert found is not None
    return found


async def _board(session: AsyncSession, **kw: Any) -> Board:
    """The board's JSON, read back through its documented shape."""
    return Board.model_validate_json(await service.board_json(session, **kw))


def _events(session: AsyncSession) -> list[Any]:
    return list(session.info.get(_EVENTS_KEY, []))


async def test_a_lost_move_needs_a_reason_and_a_won_move_an_amount(
    session: AsyncSession, make_user: UserFactory
) -> None:
    manager = await _user(make_user, session, "manager")
    client = await _client(session)
    deal = await service.create_deal(
        session, DealCreate(client_id=client.id, title="Boxes"), actor=manager
    )
    assert deal.responsible_id == manager.id and deal.amount == 0
    won, lost = await _stage(session, "won"), await _stage(session, "lost")

    with pytest.raises(Invalid, match="lost_reason"):
        await service.move_stage(session, deal.id, StageMove(stage_id=lost.id), actor=manager)
    with pytest.raises(Invalid, match="lost_reason"):
        await service.move_stage(
            session, deal.id, StageMove(stage_id=lost.id, lost_reason="   "), actor=manager
        )
    with pytest.raises(Invalid, match="amount"):
        await service.move_stage(session, deal.id, StageMove(stage_id=won.id), actor=manager)
    assert deal.closed_at is None and deal.stage_id != won.id

    moved = await service.move_stage(
        session, deal.id, StageMove(stage_id=won.id, amount=Decimal("1200.50")), actor=manager
    )
    assert moved.amount == Decimal("1200.50") and moved.closed_at is not None
    assert moved.stage_since == moved.closed_at

    # back to work, then lost with a reason: the reason is kept on the deal and the move
    first = (await repository.stages(session))[0]
    await service.move_stage(session, deal.id, StageMove(stage_id=first.id), actor=manager)
    assert deal.closed_at is None
    await service.move_stage(
        session, deal.id, StageMove(stage_id=lost.id, lost_reason="Дорого"), actor=manager
    )
    assert deal.lost_reason == "Дорого" and deal.closed_at is not None
    # a won move with the amount already on the deal needs none given
    await service.move_stage(session, deal.id, StageMove(stage_id=won.id), actor=manager)
    assert deal.lost_reason is None and deal.amount == Decimal("1200.50")
    await session.commit()

    history = await repository.moves_with_names(session, deal.id)
    assert [(m.from_stage_id, m.to_stage_id, m.lost_reason) for m, _ in history] == [
        (None, first.id, None),
        (first.id, won.id, None),
        (won.id, first.id, None),
        (first.id, lost.id, "Дорого"),
        (lost.id, won.id, None),
    ]
    assert {(m.user_id, who) for m, who in history} == {(manager.id, "Manager Person")}


async def test_moves_publish_typed_news_for_supervisors_and_the_responsible(
    session: AsyncSession, make_user: UserFactory
) -> None:
    manager = await _user(make_user, session, "manager")
    supervisor = await _user(make_user, session, "supervisor")
    client = await _client(session)
    deal = await service.create_deal(
        session,
        DealCreate(client_id=client.id, title="Crates", responsible_id=manager.id),
        actor=supervisor,
    )
    second = (await repository.stages(session))[1]
    await service.move_stage(session, deal.id, StageMove(stage_id=second.id), actor=supervisor)
    await service.update_deal(session, deal.id, DealUpdate(title="Big crates"), actor=manager)
    first = (await repository.stages(session))[0]
    assert _events(session) == [
        DealChanged("deal.created", deal.id, client.id, first.id, manager.id, supervisor.id),
        DealStageChanged(deal.id, client.id, first.id, second.id, supervisor.id, manager.id),
        DealChanged("deal.updated", deal.id, client.id, second.id, manager.id, manager.id),
    ]
    # the same stage again changes nothing and says nothing
    await service.move_stage(session, deal.id, StageMove(stage_id=second.id), actor=manager)
    assert len(_events(session)) == 3


async def test_only_the_responsible_or_staff_move_and_edit(
    session: AsyncSession, make_user: UserFactory
) -> None:
    owner = await _user(make_user, session, "manager")
    other = await _user(make_user, session, "manager")
    operator = await _user(make_user, session, "operator")
    admin = await _user(make_user, session, "admin")
    client = await _client(session)
    deal = await service.create_deal(
        session, DealCreate(client_id=client.id, title="Pallets"), actor=owner
    )
    second = (await repository.stages(session))[1]
    for outsider in (other, operator):
        with pytest.raises(Forbidden):
            await service.move_stage(
                session, deal.id, StageMove(stage_id=second.id), actor=outsider
            )
        with pytest.raises(Forbidden):
            await service.update_deal(session, deal.id, DealUpdate(title="x"), actor=outsider)
    await service.move_stage(session, deal.id, StageMove(stage_id=second.id), actor=admin)
    assert deal.stage_id == second.id
    with pytest.raises(NotFound):
        await service.move_stage(session, 999_999, StageMove(stage_id=second.id), actor=admin)


async def test_bad_deals_are_refused(session: AsyncSession, make_user: UserFactory) -> None:
    manager = await _user(make_user, session, "manager")
    client = await _client(session)
    lost = await _stage(session, "lost")
    with pytest.raises(Invalid, match="open stage"):
        await service.create_deal(
            session, DealCreate(client_id=client.id, title="x", stage_id=lost.id), actor=manager
        )
    with pytest.raises(Invalid, match="user 424242"):
        await service.create_deal(
            session, DealCreate(client_id=client.id, title="x", responsible_id=424242), actor=None
        )
    with pytest.raises(Invalid, match="client"):
        await service.create_deal(session, DealCreate(client_id=424242, title="x"), actor=None)
    deal = await service.create_deal(
        session, DealCreate(client_id=client.id, title="x", amount=Decimal(5)), actor=manager
    )
    won = await _stage(session, "won")
    await service.move_stage(session, deal.id, StageMove(stage_id=won.id), actor=manager)
    with pytest.raises(Invalid, match="won deal"):
        await service.update_deal(session, deal.id, DealUpdate(amount=Decimal(0)), actor=manager)


@pytest.mark.usefixtures("kept")
async def test_admins_shape_the_pipeline(session: AsyncSession, make_user: UserFactory) -> None:
    manager = await _user(make_user, session, "manager")
    before = await repository.stages(session)
    added = await pipeline.create_stage(session, StageCreate(name="Demo booked"))
    stages = await repository.stages(session)
    # a new open stage goes after the last open one, before Won and Lost
    assert [s.kind for s in stages][-3:] == ["open", "won", "lost"]
    assert stages[-3].id == added.id and len(stages) == len(before) + 1
    with pytest.raises(Conflict):
        await pipeline.create_stage(session, StageCreate(name="Demo booked"))

    renamed = await pipeline.update_stage(session, added.id, StageUpdate(name="Demo done"))
    assert renamed.name == "Demo done"
    with pytest.raises(Conflict):
        await pipeline.update_stage(session, added.id, StageUpdate(name=before[0].name))

    order = [s.id for s in reversed(stages)]
    assert [s.id for s in await pipeline.reorder_stages(session, Order(ids=order))] == order
    with pytest.raises(Invalid):
        await pipeline.reorder_stages(session, Order(ids=order[1:]))
    with pytest.raises(Invalid):
        await pipeline.reorder_stages(session, Order(ids=[*order[1:], order[1]]))

    # a second lost stage, and the stage turned into one while it holds no deal
    await pipeline.update_stage(session, added.id, StageUpdate(kind="lost"))
    assert added.is_closed and not added.is_won
    client = await _client(session)
    deal = await service.create_deal(
        session, DealCreate(client_id=client.id, title="x", stage_id=before[0].id), actor=manager
    )
    with pytest.raises(Conflict, match="deal"):
        await pipeline.update_stage(session, before[0].id, StageUpdate(kind="won"))
    with pytest.raises(Conflict, match="deals"):
        await pipeline.delete_stage(session, before[0].id)
    await service.move_stage(
        session, deal.id, StageMove(stage_id=added.id, lost_reason="No need"), actor=manager
    )
    assert deal.lost_reason == "No need"
    # used in the history: kept
    with pytest.raises(Conflict):
        await pipeline.delete_stage(session, added.id)
    await session.commit()


@pytest.mark.usefixtures("kept")
async def test_the_last_stage_of_a_kind_stays_and_unused_stages_go(
    session: AsyncSession,
) -> None:
    won = await _stage(session, "won")
    with pytest.raises(Conflict, match="won"):
        await pipeline.delete_stage(session, won.id)
    with pytest.raises(Conflict, match="won"):
        await pipeline.update_stage(session, won.id, StageUpdate(kind="open"))
    spare = await pipeline.create_stage(session, StageCreate(name="Spare", kind="won"))
    await pipeline.delete_stage(session, spare.id)
    assert spare.id not in {s.id for s in await repository.stages(session)}
    with pytest.raises(NotFound):
        await pipeline.delete_stage(session, spare.id)
    await session.commit()


async def test_admins_edit_the_lists(session: AsyncSession) -> None:
    a = await choices.add(session, "lost_reason", ChoiceCreate(name="Дорого"))
    b = await choices.add(session, "lost_reason", ChoiceCreate(name="  Нет потребности "))
    source = await choices.add(session, "lead_source", ChoiceCreate(name="Дорого"))
    assert b.name == "Нет потребности" and (a.position, b.position) == (0, 1)
    with pytest.raises(Conflict):
        await choices.add(session, "lost_reason", ChoiceCreate(name="Дорого"))
    with pytest.raises(Conflict):
        await choices.rename(session, "lost_reason", b.id, ChoiceCreate(name="Дорого"))
    await choices.rename(session, "lost_reason", a.id, ChoiceCreate(name="Слишком дорого"))
    await choices.reorder(session, "lost_reason", Order(ids=[b.id, a.id]))
    listed = await repository.choices(session, "lost_reason")
    assert [c.name for c in listed] == ["Нет потребности", "Слишком дорого"]
    with pytest.raises(Invalid):
        await choices.reorder(session, "lost_reason", Order(ids=[b.id, source.id]))
    # an entry of the other list is not found under this one
    with pytest.raises(NotFound):
        await choices.remove(session, "lost_reason", source.id)
    await choices.remove(session, "lost_reason", a.id)
    assert [c.name for c in await repository.choices(session, "lost_reason")] == ["Нет потребности"]
    assert [c.name for c in await repository.choices(session, "lead_source")] == ["Дорого"]


async def test_the_board_columns_cards_and_filters(
    sessions: async_sessionmaker[AsyncSession], make_user: UserFactory
) -> None:
    async with sessions() as s:
        anna = await _user(make_user, s, "manager")
        boris = await _user(make_user, s, "manager")
        sup = await _user(make_user, s, "supervisor")
        client = await _client(s, "ООО Ромашка")
        stages = await repository.stages(s)
        won, lost = await _stage(s, "won"), await _stage(s, "lost")
        made = {}
        for title, owner, source in (
            ("A", anna, "Сайт"),
            ("B", anna, "Звонок"),
            ("C", boris, "Сайт"),
            ("D", anna, None),
        ):
            made[title] = await service.create_deal(
                s,
                DealCreate(
                    client_id=client.id, title=title, lead_source=source, amount=Decimal(10)
                ),
                actor=owner,
            )
        await service.move_stage(s, made["B"].id, StageMove(stage_id=stages[1].id), actor=anna)
        await service.move_stage(s, made["C"].id, StageMove(stage_id=won.id), actor=boris)
        await service.move_stage(
            s, made["D"].id, StageMove(stage_id=lost.id, lost_reason="Дорого"), actor=anna
        )
        now = datetime.now(UTC)
        # A entered its stage 3 days ago and was last called an hour ago
        await s.execute(
            update(Deal).where(Deal.id == made["A"].id).values(stage_since=now - timedelta(days=3))
        )
        for at in (now - timedelta(days=2), now - timedelta(hours=1)):
            s.add(
                Communication(
                    kind="call",
                    direction="in",
                    status="answered",
                    client_id=client.id,
                    deal_id=made["A"].id,
                    occurred_at=at,
                )
            )
        await s.commit()

    async with sessions() as s:
        viewer = await s.get(User, sup.id)
        assert viewer is not None
        board = await _board(
            s, viewer=viewer, responsible="all", lead_source=None, date_from=None, date_to=None
        )
    assert [c.stage.id for c in board.columns] == [st.id for st in stages]
    cards = {c.title: c for col in board.columns for c in col.cards}
    assert set(cards) == {"A", "B", "C", "D"}
    a = cards["A"]
    assert a.stage_id == stages[0].id and a.days_in_stage == 3
    assert a.client_name == "ООО Ромашка" and a.responsible_name == "Manager Person"
    assert a.last_contact_at is not None
    assert abs((a.last_contact_at - (now - timedelta(hours=1))).total_seconds()) < 1
    assert cards["B"].last_contact_at is None and cards["B"].days_in_stage == 0
    assert cards["D"].lost_reason == "Дорого" and cards["C"].closed_at is not None
    by_stage = {c.stage.id: c for c in board.columns}
    assert (by_stage[won.id].total, by_stage[won.id].amount_total) == (1, "10.00")
    assert by_stage[stages[0].id].total == 1

    async def titles(viewer_id: int, **kw: Any) -> set[str]:
        args: dict[str, Any] = {
            "responsible": "me",
            "lead_source": None,
            "date_from": None,
            "date_to": None,
        } | kw
        async with sessions() as s:
            viewer = await s.get(User, viewer_id)
            assert viewer is not None
            b = await _board(s, viewer=viewer, **args)
        return {c.title for col in b.columns for c in col.cards}

    assert await titles(anna.id) == {"A", "B", "D"}
    assert await titles(sup.id, responsible=str(boris.id)) == {"C"}
    assert await titles(sup.id, responsible="all", lead_source="Сайт") == {"A", "C"}
    today = datetime.now(UTC).date()
    assert await titles(sup.id, responsible="all", date_from=today + timedelta(days=2)) == set()
    assert await titles(
        sup.id,
        responsible="all",
        date_from=today - timedelta(days=1),
        date_to=today + timedelta(days=1),
    ) == {"A", "B", "C", "D"}
    # the period dates an open deal by its creation, a closed one by its closing: A (open) and
    # D (lost today) were both created ten days ago
    async with sessions() as s:
        await s.execute(
            update(Deal)
            .where(Deal.id.in_([made["A"].id, made["D"].id]))
            .values(created_at=now - timedelta(days=10))
        )
        await s.commit()
    around_today = {"date_from": today - timedelta(days=1), "date_to": today + timedelta(days=1)}
    assert await titles(sup.id, responsible="all", **around_today) == {"B", "C", "D"}
    back_then = {"date_from": today - timedelta(days=11), "date_to": today - timedelta(days=9)}
    assert await titles(sup.id, responsible="all", **back_then) == {"A"}
    with pytest.raises(Forbidden):
        await titles(anna.id, responsible="all")
    with pytest.raises(Forbidden):
        await titles(anna.id, responsible=str(boris.id))
    assert await titles(anna.id, responsible=str(anna.id)) == {"A", "B", "D"}
    for bad in ("nobody", "0", "99999999999"):
        with pytest.raises(Invalid):
            await titles(sup.id, responsible=bad)
    with pytest.raises(Invalid):
        await titles(sup.id, date_from=today, date_to=today - timedelta(days=1))


def test_a_period_is_whole_days_in_the_viewers_zone() -> None:
    start, end = period(date(2031, 3, 4), date(2031, 3, 4), "Europe/Moscow")
    assert start == datetime(2031, 3, 3, 21, 0, tzinfo=UTC)
    assert end == datetime(2031, 3, 4, 21, 0, tzinfo=UTC)
    assert period(None, None, "UTC") == (None, None)


@pytest.mark.parametrize(
    ("locale", "stages", "reasons", "sources"),
    [
        (
            "ru",
            [
                "Неразобранное",
                "Первичный контакт",
                "Переговоры",
                "Принимают решение",
                "Договор",
                "Успешно",
                "Провалено",
            ],
            ["Дорого", "Выбрали конкурента", "Нет потребности", "Не дозвонились", "Другое"],
            ["Звонок", "Сайт", "Рекомендация", "Выставка", "Электронная почта", "Другое"],
        ),
        (
            "en",
            ["Unsorted", "First contact", "Negotiation", "Deciding", "Contract", "Won", "Lost"],
            ["Too expensive", "Chose a competitor", "No need", "No answer", "Other"],
            ["Call", "Website", "Referral", "Exhibition", "Email", "Other"],
        ),
    ],
)
async def test_a_fresh_install_seeds_names_in_its_default_locale(
    scratch_url: str,
    locale: str,
    stages: list[str],
    reasons: list[str],
    sources: list[str],
) -> None:
    upgrade(scratch_url, locale=locale)
    scratch = make_engine(scratch_url)
    async with scratch.connect() as conn:
        got = [
            tuple(r)
            for r in await conn.execute(
                text("SELECT name, is_closed, is_won FROM deal_stages ORDER BY position")
            )
        ]
        lists = {
            kind: [
                r[0]
                for r in await conn.execute(
                    text("SELECT name FROM deal_choices WHERE kind = :k ORDER BY position"),
                    {"k": kind},
                )
            ]
            for kind in ("lost_reason", "lead_source")
        }
    await scratch.dispose()
    assert [g[0] for g in got] == stages
    assert [g[1:] for g in got][-2:] == [(True, True), (True, False)]
    assert lists == {"lost_reason": reasons, "lead_source": sources}


async def test_history_rows_are_stored(session: AsyncSession, make_user: UserFactory) -> None:
    manager = await _user(make_user, session, "manager")
    client = await _client(session)
    deal = await service.create_deal(
        session, DealCreate(client_id=client.id, title="x"), actor=manager
    )
    lost = await _stage(session, "lost")
    await service.move_stage(
        session, deal.id, StageMove(stage_id=lost.id, lost_reason="No need"), actor=manager
    )
    await session.commit()
    rows = (
        await session.scalars(select(DealStageMove).where(DealStageMove.deal_id == deal.id))
    ).all()
    assert [(r.to_stage_id, r.lost_reason, r.user_id) for r in rows][-1] == (
        lost.id,
        "No need",
        manager.id,
    )


async def test_won_and_lost_zones_carry_the_latest_with_the_full_count(
    sessions: async_sessionmaker[AsyncSession],
    make_user: UserFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(board_view, "CLOSED_LIMIT", 2)
    async with sessions() as s:
        sup = await _user(make_user, s, "supervisor")
        client = await _client(s)
        won = await _stage(s, "won")
        for title in ("W1", "W2", "W3"):
            deal = await service.create_deal(
                s,
                DealCreate(client_id=client.id, title=title, amount=Decimal(100)),
                actor=sup,
            )
            await service.move_stage(s, deal.id, StageMove(stage_id=won.id), actor=sup)
        await s.commit()
        board = await _board(
            s, viewer=sup, responsible="all", lead_source=None, date_from=None, date_to=None
        )
    zone = next(c for c in board.columns if c.stage.id == won.id)
    assert (zone.total, zone.amount_total) == (3, "300.00")
    assert [c.title for c in zone.cards] == ["W3", "W2"]  # the latest closed first
    assert board.closed_limit == 2
