"""Who may change what: pure rules, applied by the web layer and the services alike."""

from __future__ import annotations

from crm_core.users.models import Role, User

STAFF_ROLES = (Role.supervisor.value, Role.admin.value)


def is_staff(user: User) -> bool:
    return user.role in STAFF_ROLES


def can_change_assigned(user: User, owner_id: int | None) -> bool:
    """Operators and managers change only what is assigned to them; supervisors and admins all."""
    return is_staff(user) or (owner_id is not None and owner_id == user.id)
