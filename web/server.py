"""Running the app under uvicorn."""

from __future__ import annotations

import uvicorn

from web.app import create_app
from web.settings import Settings


def serve(settings: Settings) -> int:
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.web.http_host,
        port=settings.web.http_port,
        log_config=None,
        ws_per_message_deflate=False,  # compression doubles the cost of a fan-out
        # pages send a token and pongs: a socket's frames get the limit of token-less bodies
        ws_max_size=settings.web.public_max_body_bytes,
    )
    return 0
