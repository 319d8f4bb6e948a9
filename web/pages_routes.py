"""The pages: one table of path -> html file -> roles -> navigation label, served by one helper.

A page added later is one `Page(...)` row here (and its html in web/pages/, its label key in a
catalogue under web/pages/static/lib/i18n/). A page's file holds its `<body>` only: every page
is served with the one head in web/pages/_head.html (charset, viewport, title, app.css), plus the
page's own stylesheets named in its row. The table also feeds the shell's navigation:
`GET /api/auth/me` lists the pages the user's role may open, in this order, so the header never
offers a page that would refuse them.

The html itself is public (a page carries no data; its script asks the API with the bearer
token, which lives in the browser's storage, not in a cookie the server could read). Whether a
role may open a page is the shell's check against this table, and the API's on every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from crm_core.users.models import ROLES

PAGES_DIR = Path(__file__).parent / "pages"
EVERYONE = frozenset(ROLES)
STAFF = frozenset({"supervisor", "admin"})
SALES = frozenset({"manager", "supervisor", "admin"})
ADMIN = frozenset({"admin"})


@dataclass(frozen=True, slots=True)
class Page:
    path: str  # the URL
    html: str  # the file in web/pages/
    roles: frozenset[str]  # who may open it
    label: str | None  # i18n key of its link in the shell's header; None: not in the navigation
    styles: tuple[str, ...] = ()  # its own stylesheets under /static, after app.css


# Order = the header's order. Add a row for a new page (see the module's docstring); the rows
# planned for the other pages are here as comments, in their place: uncomment yours (its label
# key is already in lib/i18n/shell.*.js).
PAGES: list[Page] = [
    Page("/", "index.html", EVERYONE, None),  # sign-in
    Page("/operator", "operator.html", EVERYONE, "nav.operator"),
    Page("/deals", "deals.html", SALES, "nav.deals", ("deals.css",)),  # the deals board (issue 14)
    Page("/tasks", "tasks.html", EVERYONE, "nav.tasks", ("tasks.css",)),  # agenda (issue 15)
    Page("/dashboard", "dashboard.html", STAFF, "nav.dashboard"),
    # schedules: everyone sees who is on duty and their own schedule; staff edit (the API decides)
    Page("/schedules", "schedules.html", EVERYONE, "nav.schedules"),
    # reports: managers see their own figures, staff everyone's (the API decides)
    Page("/reports", "reports.html", SALES, "nav.reports", ("vendor/uplot/uPlot.min.css",)),
    Page("/admin/users", "admin_users.html", ADMIN, "nav.users", ("admin_users.css",)),
    Page("/admin/stages", "admin_stages.html", ADMIN, "nav.stages", ("deals.css",)),
    Page("/admin/lists", "admin_lists.html", ADMIN, "nav.lists", ("deals.css",)),
]


class NavPage(BaseModel):
    """A page the signed-in user may open: its URL and the i18n key of its link."""

    path: str
    label: str


def nav_for(role: str) -> list[NavPage]:
    """The header's links for `role`, in the table's order."""
    return [NavPage(path=p.path, label=p.label) for p in PAGES if p.label and role in p.roles]


def render(page: Page) -> str:
    """The page's html: the shared head, its own stylesheets, its body."""
    head = (PAGES_DIR / "_head.html").read_text(encoding="utf-8")
    styles = "".join(f'<link rel="stylesheet" href="/static/{css}">\n' for css in page.styles)
    body = (PAGES_DIR / page.html).read_text(encoding="utf-8")
    return f"{head}{styles}</head>\n{body}</html>\n"


def _serve(app: FastAPI, page: Page) -> None:
    # built once at start-up: a page is static, so each request is no file read (an edited page
    # shows after a restart)
    html = render(page)

    async def serve() -> HTMLResponse:
        return HTMLResponse(html)

    app.add_api_route(page.path, serve, methods=["GET"], include_in_schema=False, name=page.html)


def install(app: FastAPI) -> None:
    """Every page of the table, and the pages' static files under /static."""
    app.mount("/static", StaticFiles(directory=PAGES_DIR / "static"), name="static")
    for page in PAGES:
        _serve(app, page)
