"""Security headers on every HTTP response: the pages' Content-Security-Policy and friends.

The pages load scripts only from this service (no inline script, no CDN): an injected
`<script>` or `onclick=` does not run. Inline `style=` attributes stay allowed (the pages and
Swagger UI use them; a style cannot run code). Token responses are never cached.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# responses carrying a bearer token (or the signed-in user): no cache may keep them
_NO_STORE_PREFIXES = ("/api/auth/",)


def content_security_policy(media_origins: list[str]) -> str:
    """The policy; `media_origins`: where players may fetch recordings besides this service."""
    media = " ".join(["'self'", *media_origins])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",  # the pages' empty data: favicon, Swagger UI's icons
            "font-src 'self'",
            "connect-src 'self'",  # the API and the /ws socket (same host)
            f"media-src {media}",
            "worker-src 'self' blob:",  # ReDoc's search worker
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def origin_of(url_template: str) -> list[str]:
    """The origin of RECORDINGS_URL_TEMPLATE (players are redirected there), if any."""
    parts = urlsplit(url_template)
    return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []


class SecurityHeaders:
    """Pure ASGI (not BaseHTTPMiddleware): streamed audio and websockets pass untouched."""

    def __init__(self, app: ASGIApp, policy: str) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = str(scope.get("path", "")).startswith(_NO_STORE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", self.policy)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")  # frame-ancestors for old browsers
                headers.setdefault("Referrer-Policy", "no-referrer")  # signed links stay here
                if no_store:
                    headers["Cache-Control"] = "no-store"
                    headers["Pragma"] = "no-cache"
            await send(message)

        await self.app(scope, receive, send_with_headers)
