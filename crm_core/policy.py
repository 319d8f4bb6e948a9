"""Who may change what: pure rules, applied by the web layer and the services alike."""

from __future__ import annotations

from typing import Protocol

from crm_core.users.models import Role, User

STAFF_ROLES = (Role.supervisor.value, Role.admin.value)


class HasRole(Protocol):
    """Anyone with a role: a User, or the detached view of one a websocket keeps."""

    @property
    def role(self) -> str: ...


def is_staff(user: HasRole) -> bool:
    """Supervisors and admins: they see and change everyone's work."""
    return user.role in STAFF_ROLES


def can_change_assigned(user: User, owner_id: int | None) -> bool:
    """Operators and managers change only what is assigned to them; supervisors and admins all."""
    return is_staff(user) or (owner_id is not None and owner_id == user.id)


def may_see_user(viewer: User, user_id: int) -> bool:
    """A user's full record and schedule: their own, or anyone's for supervisors and admins.

    Client cards and timelines are open to every role (a call can come from anyone); what is
    about a colleague (their login, role, schedule, report) is not.
    """
    return is_staff(viewer) or viewer.id == user_id


def may_assign_to(actor: User, owner_id: int | None) -> bool:
    """Whether `actor` may make `owner_id` responsible for something new: themselves or nobody,
    anyone for supervisors and admins."""
    return is_staff(actor) or owner_id is None or owner_id == actor.id


def may_hear_call(
    user: User,
    *,
    call_user_id: int | None,
    agent_extensions: set[str],
    owner_ids: set[int | None],
) -> bool:
    """A call's recording: supervisors and admins hear all; others the calls they were on
    (by user or extension) and those of their own clients and deals (`owner_ids`)."""
    if is_staff(user):
        return True
    if call_user_id is not None and call_user_id == user.id:
        return True
    if user.extension and user.extension in agent_extensions:
        return True
    return user.id in owner_ids
