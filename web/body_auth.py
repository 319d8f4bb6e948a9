"""Authentication before the body: a request that needs a token is refused before it is read.

FastAPI reads and parses a body before running the dependencies that check the token, so anyone
could make the service read (up to MAX_BODY_BYTES of) JSON or forms without signing in. This pure
ASGI middleware checks the bearer token of every body-carrying request to the API first: no
token or a dead one is answered 401 with nothing read. Routes anyone may call (sign-in, Twilio's
signed webhooks) are listed as public and pass through, under their own smaller body limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from crm_core.users.sessions import signed_in
from web.container import Container
from web.deps import BAD_TOKEN, NO_TOKEN

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PROTECTED_PREFIXES = ("/api/",)
# Reachable without a bearer token; each authenticates in its own way, or is the sign-in itself.
PUBLIC_PREFIXES = ("/api/auth/token", "/webhooks/")


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES)


def bearer(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
    return None


async def _refuse(send: Send, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b"Bearer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyAuth:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] not in BODY_METHODS
            or not path.startswith(PROTECTED_PREFIXES)
            or is_public(path)
        ):
            await self.app(scope, receive, send)
            return
        token = bearer(scope["headers"])
        if token is None:
            await _refuse(send, NO_TOKEN)
            return
        c: Container = scope["app"].state.container
        async with c.sessions() as session:
            found = await signed_in(session, token)
        if found is None:
            await _refuse(send, BAD_TOKEN)
            return
        await self.app(scope, receive, send)
