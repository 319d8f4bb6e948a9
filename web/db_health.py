"""Whether the database can be reached: the errors that mean it cannot, and a quick probe."""

from __future__ import annotations

import asyncio

import asyncpg.exceptions as pg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

# 57014 statement_timeout / lock waits, 57P0x shutdowns, 53300 too many connections, lost links
_PG_UNAVAILABLE = (
    pg.QueryCanceledError,
    pg.OperatorInterventionError,
    pg.CannotConnectNowError,
    pg.TooManyConnectionsError,
    pg.PostgresConnectionError,
    pg.ConnectionDoesNotExistError,
    pg.InterfaceError,
)


def _from_driver(exc: BaseException) -> bool:
    # a bare OSError or TimeoutError counts only when the database driver or pool raised it
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("asyncpg", "sqlalchemy")):
            return True
        tb = tb.tb_next
    return False


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database is down, frozen or out of connections."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError):
        cause: BaseException | None = exc.orig
        while cause is not None:
            if isinstance(cause, _PG_UNAVAILABLE) or isinstance(cause, (OSError, TimeoutError)):
                return True
            cause = cause.__cause__
        return False
    return isinstance(exc, (OSError, TimeoutError)) and _from_driver(exc)


async def probe(engine: AsyncEngine, seconds: float) -> str | None:
    """None when `SELECT 1` answers within `seconds`, else why not."""
    try:
        async with asyncio.timeout(seconds):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except TimeoutError:
        return f"no answer within {seconds:g} s"
    except Exception as exc:  # any failure is the answer: the database is not usable
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
    return None
