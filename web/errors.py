"""Domain errors, bad input and an unreachable database become clear JSON errors."""

from __future__ import annotations

import logging
from typing import Any

from asyncpg.exceptions import DataError as PgDataError
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from crm_core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from web.db_health import database_unavailable

logger = logging.getLogger(__name__)

_STATUS: dict[type[DomainError], int] = {NotFound: 404, Forbidden: 403, Conflict: 409, Invalid: 422}


def _without_input(errors: Any) -> list[dict[str, Any]]:
    # pydantic puts the submitted value in "input": a password (or a token) must never come back
    return [{k: v for k, v in e.items() if k != "input"} for e in errors]


def _refused_by_database(exc: DBAPIError) -> bool:
    """PostgreSQL said the value itself is invalid (class 22: NUL byte, out of range, …)."""
    cause: BaseException | None = exc.orig
    while cause is not None:
        if isinstance(cause, PgDataError):
            return True
        cause = cause.__cause__
    return False


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        code = next((c for t, c in _STATUS.items() if isinstance(exc, t)), 400)
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"detail": jsonable_encoder(_without_input(exc.errors()))}, status_code=422
        )

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # the request schemas refuse poison input first; this is the net under what they miss
        if _refused_by_database(exc):
            logger.warning("the database refused a request's value: %s", exc.orig)
            return JSONResponse({"detail": "invalid value in the request"}, status_code=422)
        return _unavailable_or_internal(exc)

    # the driver's own timeouts and refused connections, and a pool with no connection free
    for kind in (PoolTimeout, TimeoutError, OSError):
        app.add_exception_handler(kind, _unavailable_or_internal_handler)


async def _unavailable_or_internal_handler(request: Request, exc: Exception) -> JSONResponse:
    return _unavailable_or_internal(exc)


def _unavailable_or_internal(exc: Exception) -> JSONResponse:
    if database_unavailable(exc):
        logger.warning("database unavailable: %s", exc)
        return JSONResponse(
            {"detail": "the database is unavailable, try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    logger.error("unhandled error", exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=500)
