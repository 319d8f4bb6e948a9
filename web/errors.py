"""Domain errors, bad input and an unreachable database become clear JSON errors.

Each answer is `{"detail": <English, as it always was>, "code": <stable machine code>}` (and
`params` when the code's translation has slots): the pages translate the code, scripts and
tests keep reading `detail`. A 422 of the request schemas is `code: "validation"` with
FastAPI's list of problems (each with its pydantic `type` and `ctx`, translated per type).
"""

from __future__ import annotations

import logging
from typing import Any

from asyncpg.exceptions import DataError as PgDataError
from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from crm_core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from web.db_health import database_unavailable

logger = logging.getLogger(__name__)

_STATUS: dict[type[DomainError], int] = {NotFound: 404, Forbidden: 403, Conflict: 409, Invalid: 422}

# the code of an HTTPException raised without one, by its status
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "throttled",
    503: "unavailable",
}


class CodedHTTPException(HTTPException):
    """An HTTPException with its own machine code (see the module's docstring)."""

    def __init__(
        self, status_code: int, detail: str, code: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code, detail=detail, headers=headers)
        self.code = code


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
        status = next((c for t, c in _STATUS.items() if isinstance(exc, t)), 400)
        body: dict[str, Any] = {"detail": str(exc), "code": exc.code}
        if exc.params:
            body["params"] = exc.params
        return JSONResponse(body, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code < 400:
            return await http_exception_handler(request, exc)
        code = getattr(exc, "code", None) or _HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(
            {"detail": exc.detail, "code": code},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"detail": jsonable_encoder(_without_input(exc.errors())), "code": "validation"},
            status_code=422,
        )

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # the request schemas refuse poison input first; this is the net under what they miss
        if _refused_by_database(exc):
            logger.warning("the database refused a request's value: %s", exc.orig)
            return JSONResponse(
                {"detail": "invalid value in the request", "code": "invalid_value"},
                status_code=422,
            )
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
            {"detail": "the database is unavailable, try again shortly", "code": "unavailable"},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    logger.error("unhandled error", exc_info=exc)
    return JSONResponse({"detail": "internal error", "code": "internal"}, status_code=500)
