"""Admins shape the pipeline and the deal forms' lists: stages, lost reasons, lead sources."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel

from crm_core.deals import choices, pipeline, repository
from crm_core.deals.schemas import (
    ChoiceCreate,
    ChoiceOut,
    Order,
    StageCreate,
    StageOut,
    StageUpdate,
)
from crm_core.inputs import Id
from web.deps import Admin, CurrentUser, Session

router = APIRouter(prefix="/api", tags=["deal settings"])


class Removed(BaseModel):
    id: int
    removed: bool = True


@router.post("/stages", status_code=status.HTTP_201_CREATED)
async def create_stage(data: StageCreate, session: Session, admin: Admin) -> StageOut:
    """A new open stage goes after the last open one; a won or lost one at the end."""
    return StageOut.from_row(await pipeline.create_stage(session, data))


@router.put("/stages/order")
async def reorder_stages(order: Order, session: Session, admin: Admin) -> list[StageOut]:
    return [StageOut.from_row(s) for s in await pipeline.reorder_stages(session, order)]


@router.patch("/stages/{stage_id}")
async def update_stage(stage_id: Id, data: StageUpdate, session: Session, admin: Admin) -> StageOut:
    """Rename, or change whether it closes deals as won or lost (only while it holds none)."""
    return StageOut.from_row(await pipeline.update_stage(session, stage_id, data))


@router.delete("/stages/{stage_id}")
async def delete_stage(stage_id: Id, session: Session, admin: Admin) -> Removed:
    """409 while any deal is in the stage or its history names it."""
    await pipeline.delete_stage(session, stage_id)
    return Removed(id=stage_id)


def _list_routes(path: str, kind: str) -> None:
    """The same five routes for each list, under its own literal path."""

    async def list_items(session: Session, user: CurrentUser) -> list[ChoiceOut]:
        return [ChoiceOut.from_row(c) for c in await repository.choices(session, kind)]

    async def add_item(data: ChoiceCreate, session: Session, admin: Admin) -> ChoiceOut:
        return ChoiceOut.from_row(await choices.add(session, kind, data))

    async def reorder_items(order: Order, session: Session, admin: Admin) -> list[ChoiceOut]:
        return [ChoiceOut.from_row(c) for c in await choices.reorder(session, kind, order)]

    async def rename_item(
        item_id: Id, data: ChoiceCreate, session: Session, admin: Admin
    ) -> ChoiceOut:
        return ChoiceOut.from_row(await choices.rename(session, kind, item_id, data))

    async def remove_item(item_id: Id, session: Session, admin: Admin) -> Removed:
        await choices.remove(session, kind, item_id)
        return Removed(id=item_id)

    base = f"/lists/{path}"
    name = kind.replace("_", " ")
    router.add_api_route(base, list_items, methods=["GET"], summary=f"List {name}s")
    router.add_api_route(base, add_item, methods=["POST"], status_code=201, summary=f"Add a {name}")
    router.add_api_route(
        f"{base}/order", reorder_items, methods=["PUT"], summary=f"Reorder {name}s"
    )
    router.add_api_route(
        f"{base}/{{item_id}}", rename_item, methods=["PATCH"], summary=f"Rename a {name}"
    )
    router.add_api_route(
        f"{base}/{{item_id}}", remove_item, methods=["DELETE"], summary=f"Remove a {name}"
    )


_list_routes("lost-reasons", "lost_reason")
_list_routes("lead-sources", "lead_source")
