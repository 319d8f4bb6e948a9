"""The channel variables the CRM sets on a call (AGI routing, click-to-call), read back.

They come back from the PBX as text anyone with dialplan access could have set: a value no row's
id can be (not digits, or beyond the id columns' int4) is no id, rather than a statement that
fails and loses the call's fact."""

from __future__ import annotations

from collections.abc import Mapping

_INT4_MAX = 2**31 - 1


def id_in(value: str | None) -> int | None:
    """The row id `value` names, if it can be one."""
    text = (value or "").strip()
    if not text.isdigit():
        return None
    number = int(text)
    return number if 0 < number <= _INT4_MAX else None


def named_deal(variables: Mapping[str, str]) -> int | None:
    """The deal a click-to-call was placed from (or AGI routed the call for): CRM_DEAL_ID."""
    return id_in(variables.get("CRM_DEAL_ID"))


def placing_user(variables: Mapping[str, str]) -> int | None:
    """The user who placed a click-to-call: CRM_USER_ID."""
    return id_in(variables.get("CRM_USER_ID"))
