"""Request bodies are bounded before anything reads them (pure ASGI, so nothing buffers first).

A declared Content-Length over the limit is answered 413 at once, without reading a byte; a body
without one (chunked) is counted as the application reads it and cut off with 413 at the limit.
Starlette and FastAPI would otherwise read a whole body into memory before any route code runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)


def _too_large(limit: int) -> tuple[Message, Message]:
    body = json.dumps(
        {"detail": f"request body too large: at most {limit} bytes are accepted here"}
    ).encode()
    start: Message = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class BodyLimit:
    """413 for bodies over `limit_for(path)` bytes."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope["headers"])
        if declared is not None and declared > limit:
            logger.warning(
                "request body refused: too large",
                extra={"path": scope["path"][:200], "declared": declared, "limit": limit},
            )
            for message in _too_large(limit):
                await send(message)
            return
        state = {"read": 0, "answered": False, "started": False}

        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] != "http.request" or state["answered"]:
                return message
            state["read"] += len(message.get("body", b""))
            if state["read"] <= limit:
                return message
            logger.warning(
                "request body cut off: too large",
                extra={"path": scope["path"][:200], "limit": limit},
            )
            if not state["started"]:
                state["answered"] = True
                for reply in _too_large(limit):
                    await send(reply)
            # the application sees a client that went away, and stops reading
            return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            if state["answered"]:
                return  # the 413 was the response; whatever the app says after is dropped
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not state["answered"]:
                raise
            # the app tripped over the body it was denied ("stream consumed"): already answered
            logger.debug("application failed after its body was cut off", exc_info=True)


def _content_length(headers: Sequence[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
