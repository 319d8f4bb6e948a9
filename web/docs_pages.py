"""Swagger UI at /docs and ReDoc at /redoc, served with their assets from this service.

FastAPI's defaults load both from a CDN (blank pages offline) and start Swagger UI with an
inline script, which the Content-Security-Policy forbids; here the assets come from the
fastapi-offline package's files and the start-up code is our own static file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs-assets"

_SWAGGER = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}} — API</title>
<link rel="icon" href="{ASSETS}/favicon.png">
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css"></head>
<body><div id="swagger-ui" data-openapi-url="{{openapi}}"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script>
</body></html>
"""

_REDOC = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}} — API reference</title>
<link rel="icon" href="{ASSETS}/favicon.png"></head>
<body><redoc spec-url="{{openapi}}"></redoc>
<script src="{ASSETS}/redoc.standalone.js"></script>
</body></html>
"""


def install(app: FastAPI) -> None:
    """Needs an app made with docs_url=None and redoc_url=None."""
    assets = Path(str(files("fastapi_offline") / "static"))
    app.mount(ASSETS, StaticFiles(directory=assets), name="docs-assets")
    openapi = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(_SWAGGER.format(title=app.title, openapi=openapi))

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return HTMLResponse(_REDOC.format(title=app.title, openapi=openapi))
