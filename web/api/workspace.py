"""The workspace's lists and actions beside the agenda: missed calls to act on, my recent calls,
comments on a communication, contact results driving deals, linking a number to a client."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from crm_core.comments import service as comments
from crm_core.deals.models import Deal
from crm_core.errors import Forbidden
from crm_core.inputs import Id
from crm_core.merge.service import merge_client
from crm_core.policy import is_staff
from crm_core.results import service as results
from crm_core.results.models import ContactResultRecord
from crm_core.users.models import User
from crm_core.workspace import calls
from crm_core.workspace.schemas import (
    CommentCreate,
    CommentOut,
    MergeInto,
    MergeOut,
    MissedCallOut,
    RecentCallOut,
    ResultCreate,
    ResultOut,
    ResultRecordOut,
    ResultUpdate,
    SetResult,
)
from web.deps import Admin, CurrentUser, Session, container

router = APIRouter(prefix="/api", tags=["workspace"])


@router.get("/missed-calls")
async def missed_calls(
    session: Session,
    user: CurrentUser,
    assignee_id: Id | None = Query(default=None, description="whose (supervisors: anyone's)"),
    all_users: bool = Query(default=False, description="supervisors: everyone's"),
    include_done: bool = Query(default=False, description="also those called back"),
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[MissedCallOut]:
    """Missed calls to act on: one row per client's callback, with its tries."""
    if (assignee_id not in (None, user.id) or all_users) and not is_staff(user):
        raise Forbidden(
            "only supervisors read another user's missed calls", code="supervisors_only"
        )
    whose = None if all_users else (assignee_id or user.id)
    return await calls.missed_calls(
        session, assignee_id=whose, include_done=include_done, limit=limit
    )


@router.get("/calls/recent")
async def recent_calls(
    session: Session,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[RecentCallOut]:
    """The signed-in user's calls, latest first (on any computer they sign in at)."""
    return await calls.recent_calls(session, user_id=user.id, extension=user.extension, limit=limit)


@router.get("/communications/{communication_id}/comments")
async def list_comments(
    communication_id: Id, session: Session, user: CurrentUser
) -> list[CommentOut]:
    return await comments.list_comments(session, communication_id)


@router.post("/communications/{communication_id}/comments", status_code=status.HTTP_201_CREATED)
async def add_comment(
    communication_id: Id, data: CommentCreate, session: Session, user: CurrentUser
) -> CommentOut:
    return await comments.add_comment(session, communication_id, data.body, actor=user)


@router.post("/clients/{client_id}/merge")
async def merge(client_id: Id, data: MergeInto, session: Session, user: CurrentUser) -> MergeOut:
    """Merge this card (e.g. the one an unknown number made) into `into_client_id`: its calls,
    deals, tasks, phones, emails and contacts move there, and this card goes."""
    moved = await merge_client(session, client_id, data.into_client_id, actor=user)
    return MergeOut(client_id=data.into_client_id, merged_client_id=client_id, moved=moved)


def _locale(request: Request) -> str:
    return container(request).settings.core.default_locale


@router.get("/contact-results")
async def list_results(
    request: Request, session: Session, user: CurrentUser, include_inactive: bool = False
) -> list[ResultOut]:
    """The formal results of a contact (seeded in DEFAULT_LOCALE; admins edit them)."""
    rows = await results.list_results(
        session, locale=_locale(request), include_inactive=include_inactive
    )
    return [ResultOut.from_row(r) for r in rows]


@router.post("/contact-results", status_code=status.HTTP_201_CREATED)
async def create_result(
    request: Request, data: ResultCreate, session: Session, user: Admin
) -> ResultOut:
    return ResultOut.from_row(await results.create_result(session, data, locale=_locale(request)))


@router.patch("/contact-results/{result_id}")
async def update_result(
    result_id: Id, data: ResultUpdate, session: Session, user: Admin
) -> ResultOut:
    """Rename, reorder, or retire (`is_active: false`) a result; its kind stays."""
    return ResultOut.from_row(await results.update_result(session, result_id, data))


async def _record_out(session: Session, rec: ContactResultRecord) -> ResultRecordOut:
    stage = (await session.get(Deal, rec.deal_id)) if rec.deal_id else None
    return ResultRecordOut(
        id=rec.id,
        result_id=rec.result_id,
        kind=rec.kind,
        client_id=rec.client_id,
        deal_id=rec.deal_id,
        communication_id=rec.communication_id,
        task_id=rec.task_id,
        user_id=rec.user_id,
        reason=rec.reason,
        date=rec.date,
        amount=str(rec.amount) if rec.amount is not None else None,
        deal_stage_id=stage.stage_id if stage else None,
        created_at=rec.created_at,
    )


async def _set(session: Session, user: User, data: SetResult, **where: int) -> ResultRecordOut:
    rec = await results.set_result(session, data, actor=user, **where)
    await session.refresh(rec, ["created_at"])
    return await _record_out(session, rec)


@router.post("/communications/{communication_id}/result", status_code=status.HTTP_201_CREATED)
async def set_result_on_contact(
    communication_id: Id, data: SetResult, session: Session, user: CurrentUser
) -> ResultRecordOut:
    """postponed (date, reason): a task; refused (reason): the deal to Lost; sale (amount): Won;
    the others are recorded."""
    return await _set(session, user, data, communication_id=communication_id)


@router.post("/clients/{client_id}/result", status_code=status.HTTP_201_CREATED)
async def set_result_on_card(
    client_id: Id, data: SetResult, session: Session, user: CurrentUser
) -> ResultRecordOut:
    """The same on a card, without a communication."""
    return await _set(session, user, data, client_id=client_id)
