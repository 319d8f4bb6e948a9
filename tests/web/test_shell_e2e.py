"""The page shell in a real browser: every role navigates every page it may open, in Russian
and in English; a page it may not open refuses; the language switch is kept on the profile;
the sign-in page speaks the browser's language (and lists the demo's log-ins in a demo); the
two lights (the page's socket, the PBX) tell the truth; every page fits a laptop and a phone.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import web.ws
from crm_core.tasks.models import Task
from crm_core.users.models import User
from telephony.testing.replay import ReplayServer
from tests.conftest import UserFactory
from tests.web.conftest import OPERATOR, signing_in_as
from tests.web.live import (
    Contexts,
    LiveService,
    chromium_available,
    fresh_contexts,
    live_service,
    sign_in,
    sign_in_at_desk,
    with_ami,
)
from tests.web.test_i18n import CATALOGUES, load
from tests.web.test_operator_e2e import play, seed_ivan
from tests.web.test_shell_api import EXPECTED_NAV
from web.container import Container
from web.pages_routes import PAGES
from web.settings import Settings

assert chromium_available(), "chromium is not installed: run `make browser` (make test does)"

from playwright.async_api import Browser, Page, expect  # noqa: E402

pytestmark = pytest.mark.usefixtures("db")

PASSWORD = "pw-shell-1"
BROWSER_LOCALE = {"ru": "ru-RU", "en": "en-US"}
# what each role's header offers, in order (web/pages_routes.py), and what it must not open
NAV = EXPECTED_NAV
LABELS = {
    lang: {p.path: str(load(CATALOGUES / f"shell.{lang}.js")[p.label]) for p in PAGES if p.label}
    for lang in ("ru", "en")
}
assert LABELS["ru"]["/operator"] == "Рабочее место" and LABELS["en"]["/operator"] == "Workspace"
PAGES_DIR = CATALOGUES.parents[2]  # web/pages
_SCRIPT = re.compile(r'<script type="module" src="/static/([\w/]+\.js)">')
_DENIED = re.compile(r'startShell\(\{[^\n]*?\bdeniedKey: "([\w.]+)"')


def refusals(lang: str) -> dict[str, str]:
    """A page that says who it is for (its script's startShell deniedKey) -> those words."""
    words: dict[str, str | dict[str, str]] = {}
    for catalogue in CATALOGUES.glob(f"*.{lang}.js"):
        words.update(load(catalogue))
    said = {}
    for p in PAGES:
        script = _SCRIPT.search((PAGES_DIR / p.html).read_text(encoding="utf-8"))
        denied = script and _DENIED.search((PAGES_DIR / "static" / script[1]).read_text("utf-8"))
        if denied:
            said[p.path] = str(words[denied[1]])
    return said


# a page with its own refusal says who it is for; a page without its own words says the shell's
REFUSED = {lang: refusals(lang) for lang in ("ru", "en")}
assert REFUSED["ru"]["/dashboard"] == "Только для руководителей."
assert REFUSED["en"]["/dashboard"] == "Supervisors only."
# a key shown instead of its words (a missing string): "op.saved", "nav.deals"…
FAMILIES = sorted({k.split(".")[0] for f in CATALOGUES.glob("*.en.js") for k in load(f)})
RAW_KEY = re.compile(rf"\b(?:{'|'.join(FAMILIES)})\.[a-z][\w.]*")
REFUSED_ANY = {"ru": "недоступна для вашей роли", "en": "not available for your role"}
SIGN_OUT = {"ru": "Выйти", "en": "Sign out"}
HOME = {
    "operator": "/operator",
    "manager": "/operator",
    "supervisor": "/dashboard",
    "admin": "/dashboard",
}
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def browsers(browser: Browser) -> AsyncIterator[Contexts]:
    """Fresh contexts (own storage, own language, own screen), every page watched for errors."""
    async with fresh_contexts(browser, viewport=LAPTOP, timeout_ms=15_000) as contexts:
        yield contexts


@pytest.fixture
async def live(container: Container) -> AsyncIterator[LiveService]:
    async with live_service(container) as service:
        yield service


async def person(make_user: UserFactory, role: str, **extra: Any) -> User:
    user, _ = await make_user(
        role=role,
        login=f"{role}-shell",
        password=PASSWORD,
        full_name=f"{role.title()} Shell",
        extension="101" if role in ("operator", "manager") else None,
        **extra,
    )
    return user


async def sign_in_to_shell(page: Page, live: LiveService, login: str, lands: str) -> None:
    await sign_in(page, live, (login, PASSWORD), lands)
    await expect(page.locator("#shell")).to_be_visible()


async def locale_of(sessions: async_sessionmaker[AsyncSession], user_id: int) -> str | None:
    async with sessions() as s:
        return (await s.execute(select(User.locale).where(User.id == user_id))).scalar_one()


# ---------------------------------------------------------------------------------- sign-in


@pytest.mark.parametrize(
    ("lang", "button", "login", "wrong"),
    [
        ("ru", "Войти", "Логин", "Неверный логин или пароль."),
        ("en", "Sign in", "Login", "Wrong login or password."),
    ],
)
async def test_the_sign_in_page_speaks_the_browsers_language(
    live: LiveService,
    browsers: Contexts,
    make_user: UserFactory,
    lang: str,
    button: str,
    login: str,
    wrong: str,
) -> None:
    await person(make_user, "operator")
    page = await browsers.page(locale=BROWSER_LOCALE[lang])
    await page.goto(live.url + "/")
    await expect(page.locator("#login-submit")).to_have_text(button)
    await expect(page.locator("#login-form label").first).to_contain_text(login)
    await expect(page.locator("html")).to_have_attribute("lang", lang)
    # not a demo (GET /api/demo/info is 404 here): no banner
    await expect(page.locator("#demo")).to_be_hidden()
    # a wrong password is said in the same language, and nobody is signed in
    await page.fill("#login", "operator-shell")
    await page.fill("#password", "not-the-password")
    await page.click("#login-submit")
    await expect(page.locator("#login-error")).to_have_text(wrong)
    assert await page.evaluate("localStorage.getItem('crm_token')") is None
    # the schedules page's own form says it the same way
    await page.goto(live.url + "/schedules")
    await page.fill("#login-user", "operator-shell")
    await page.fill("#login-password", "not-the-password")
    await page.click("[data-testid=login-submit]")
    await expect(page.locator("#login-error")).to_have_text(wrong)
    await expect(page.locator("[data-testid=login-submit]")).to_have_text(button)


async def test_a_demo_lists_its_log_ins_on_the_sign_in_page(
    live: LiveService, browsers: Contexts, make_user: UserFactory
) -> None:
    await person(make_user, "operator")

    async def demo_info() -> dict[str, Any]:  # the demo's answer (web/demo.py's DemoInfo)
        return {
            "logins": [
                {
                    "login": "operator-shell",
                    "password": PASSWORD,
                    "role": "operator",
                    "extension": "101",
                },
                {
                    "login": "sup-demo",
                    "password": "sup-demo-pw",
                    "role": "supervisor",
                    "extension": None,
                },
            ],
            "messages_url": "/api/demo/messages",
        }

    live.app.add_api_route("/api/demo/info", demo_info, methods=["GET"])
    page = await browsers.page(locale=BROWSER_LOCALE["ru"])
    await page.goto(live.url + "/")
    banner = page.locator("[data-testid=demo-banner]")
    await expect(banner).to_be_visible()
    await expect(banner.locator("li")).to_have_count(2)
    await expect(banner.locator("li").first).to_contain_text("operator-shell")
    await expect(banner.locator("li").first).to_contain_text("внутр. номер 101")
    await expect(banner.locator("li").nth(1)).to_contain_text("sup-demo-pw")
    # "use" fills the form; signing in with it works
    await page.click("[data-testid=demo-use-operator-shell]")
    await expect(page.locator("#login")).to_have_value("operator-shell")
    await page.click("#login-submit")
    await page.wait_for_url("**/operator")


# ---------------------------------------------------------------------------------- navigation


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("role", ["operator", "manager", "supervisor", "admin"])
async def test_every_role_navigates_its_pages_and_is_refused_the_others(
    live: LiveService, browsers: Contexts, make_user: UserFactory, role: str, lang: str
) -> None:
    await person(make_user, role)
    page = await browsers.page(locale=BROWSER_LOCALE[lang])
    await sign_in_to_shell(page, live, f"{role}-shell", HOME[role])
    nav = page.locator("#shell nav a")
    await expect(nav).to_have_text([LABELS[lang][path] for path in NAV[role]])
    await expect(page.locator("#logout")).to_have_text(SIGN_OUT[lang])
    await expect(page.locator("html")).to_have_attribute("lang", lang)
    for path in NAV[role]:
        await page.locator("#shell nav a", has_text=LABELS[lang][path]).click()
        await page.wait_for_url(f"**{path}")
        current = page.locator('#shell nav a[aria-current="page"]')
        await expect(current).to_have_text(LABELS[lang][path])
        await expect(page.locator("#me")).to_contain_text(f"{role.title()} Shell")
        await expect(page.locator("[data-testid=refused]")).to_have_count(0)
        await expect(page.locator("main")).to_be_visible()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
        shown = await page.locator("body").inner_text()
        assert not RAW_KEY.findall(shown), f"{path}: keys without words {RAW_KEY.findall(shown)}"
    # a page of the table this role may not open: refused, nothing of it shown
    refused = [p.path for p in PAGES if p.label and p.path not in NAV[role]]
    assert ("/dashboard" in refused) == (role in ("operator", "manager"))
    for path in refused:
        await page.goto(live.url + path)
        words = REFUSED[lang].get(path, REFUSED_ANY[lang])
        await expect(page.locator("[data-testid=refused]")).to_contain_text(words)
        await expect(page.locator("main")).to_have_count(1)  # the refusal only
    if "/dashboard" in refused:
        await expect(page.locator("#agents")).to_have_count(0)
        response = await page.request.get(
            live.url + "/api/dashboard",
            headers={"Authorization": f"Bearer {await page.evaluate('localStorage.crm_token')}"},
        )
        assert response.status == 403  # and the API behind it says the same


async def test_the_language_switch_is_kept_on_the_profile(
    live: LiveService,
    browsers: Contexts,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    user = await person(make_user, "supervisor")
    page = await browsers.page(locale=BROWSER_LOCALE["en"])
    await sign_in_to_shell(page, live, "supervisor-shell", "/dashboard")
    await expect(page.locator("#shell nav a").first).to_have_text("Workspace")
    assert await locale_of(sessions, user.id) is None  # nobody chose yet: the browser decides
    await page.select_option("#lang", "ru")
    await expect(page.locator("#shell nav a").first).to_have_text("Рабочее место")
    await expect(page.locator("#lang")).to_have_value("ru")
    await expect(page.locator("[data-i18n='board.agents']")).to_have_text("Сотрудники")
    assert await locale_of(sessions, user.id) == "ru"
    # the profile beats the browser: another English browser signs in to Russian pages
    other = await browsers.page(locale=BROWSER_LOCALE["en"])
    await sign_in_to_shell(other, live, "supervisor-shell", "/dashboard")
    await expect(other.locator("#logout")).to_have_text("Выйти")
    await other.select_option("#lang", "en")
    await expect(other.locator("#logout")).to_have_text("Sign out")
    assert await locale_of(sessions, user.id) == "en"


# ---------------------------------------------------------------------------------- lights


async def test_the_lights_show_the_socket_and_whether_the_pbx_is_followed(
    settings: Settings,
    container: Container,
    replay: ReplayServer,
    browsers: Contexts,
    make_user: UserFactory,
) -> None:
    await person(make_user, "operator")
    with_ami(settings, replay)
    async with live_service(container) as service:
        page = await browsers.page(locale=BROWSER_LOCALE["en"])
        await sign_in_to_shell(page, service, "operator-shell", "/operator")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
        await expect(page.locator("#conn")).to_have_text("live")
        pbx = page.locator("#pbx")
        await expect(pbx).to_have_attribute("data-ami", "up")
        await expect(pbx).to_have_text("PBX: followed")
        # the PBX goes away: the light says so while the page's own socket stays up
        await replay.close()
        await expect(pbx).to_have_attribute("data-ami", "down")
        await expect(pbx).to_have_text("PBX: not followed")
        await expect(pbx).to_have_attribute("data-state", "closed")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "open")


async def test_the_light_says_live_only_once_the_server_has_subscribed_the_socket(
    live: LiveService,
    browsers: Contexts,
    make_user: UserFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Until the server has checked the token and subscribed the socket, what is published
    reaches the page as a replay, not live: the light says "connecting", not "live"."""
    await person(make_user, "operator")
    checking, go_on = asyncio.Event(), asyncio.Event()
    real = web.ws._authenticate

    async def slow(ws: Any, c: Any) -> Any:
        checked = await real(ws, c)  # the page's hello read: the socket is open on its side
        checking.set()
        await go_on.wait()
        return checked

    monkeypatch.setattr(web.ws, "_authenticate", slow)
    page = await browsers.page(locale=BROWSER_LOCALE["en"])
    await sign_in_to_shell(page, live, "operator-shell", "/operator")
    try:
        await asyncio.wait_for(checking.wait(), 30)  # bounds a failure only
        await expect(page.locator("#conn")).to_have_attribute("data-state", "connecting")
    finally:
        go_on.set()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    await expect(page.locator("#conn")).to_have_text("live")


@pytest.mark.parametrize("when", ["before", "after"])
async def test_a_socket_the_server_closes_at_once_backs_off(
    when: str,
    live: LiveService,
    browsers: Contexts,
    make_user: UserFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that accepts the socket and closes it at once, before subscribing it (its hub
    down) or right after (its replay failing), is retried ever more slowly, not every half
    second; a socket that stays up starts the backoff over."""
    await person(make_user, "operator")
    failing = True
    real_check, real_pump = web.ws._authenticate, web.ws._pump

    async def check(ws: Any, c: Any) -> Any:
        checked = await real_check(ws, c)
        if failing and when == "before":
            raise web.ws._Reject(web.ws.HUB_DOWN, "test: the hub is down")
        return checked

    async def pump(*args: Any) -> None:
        if failing and when == "after":
            raise RuntimeError("test: the replay failed")
        await real_pump(*args)

    monkeypatch.setattr(web.ws, "_authenticate", check)
    monkeypatch.setattr(web.ws, "_pump", pump)
    page = await browsers.page(locale=BROWSER_LOCALE["en"])
    await sign_in_to_shell(page, live, "operator-shell", "/operator")
    # three closes in a row: 0.25-0.5, 0.5-1, 1-2 s apart (every 0.25-0.5 s, it never gets there)
    await page.wait_for_function("() => window.__crm && window.__crm.attempt >= 3")
    subscribed = await page.evaluate("() => window.__crm.connects")
    assert subscribed == 0 if when == "before" else subscribed >= 3
    failing = False
    await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
    await page.wait_for_function("() => window.__crm.attempt === 0")  # up 3 s: settled
    assert await page.evaluate("() => window.__crm.connects") == subscribed + 1


async def test_without_a_pbx_configured_the_light_says_so(
    live: LiveService, browsers: Contexts, make_user: UserFactory
) -> None:
    await person(make_user, "supervisor")
    page = await browsers.page(locale=BROWSER_LOCALE["ru"])
    await sign_in_to_shell(page, live, "supervisor-shell", "/dashboard")
    await expect(page.locator("#pbx")).to_have_attribute("data-ami", "disabled")
    await expect(page.locator("#pbx")).to_have_text("АТС: не настроена")
    await expect(page.locator("#conn")).to_have_text("на связи")


# ---------------------------------------------------------------------------------- screens


async def overflow(page: Page) -> list[int]:
    """[scrollWidth, innerWidth] of the document: wider than the window means sideways scrolling."""
    sizes: list[int] = await page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    return sizes


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366x768", "390x844"])
async def test_every_page_fits_a_laptop_and_a_phone(
    live: LiveService,
    browsers: Contexts,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
    viewport: dict[str, int],
) -> None:
    admin = await person(make_user, "admin")
    await seed_ivan(sessions, admin)  # a card to open: the workspace at its widest
    page = await browsers.page(locale=BROWSER_LOCALE["ru"], viewport=viewport)
    await page.goto(live.url + "/")
    await expect(page.locator("#login-submit")).to_be_visible()
    scroll, inner = await overflow(page)
    assert scroll <= inner, f"/ is {scroll} px wide in a {inner} px window"
    await sign_in_to_shell(page, live, "admin-shell", "/dashboard")
    for path in NAV["admin"]:
        await page.goto(live.url + path)
        await expect(page.locator("#shell")).to_be_visible()
        await expect(page.locator("#conn")).to_have_attribute("data-state", "open")
        if path == "/operator":
            await page.click("[data-testid=find-submit]")  # my clients
            await page.locator("#find-results li.link").first.click()
            await expect(page.locator("#client-name")).to_have_value("Ivan Petrov")
        if path == "/schedules":
            await page.select_option("#user-select", index=1)  # the admin's own schedule
            await expect(page.locator("#editor")).to_be_visible()
        scroll, inner = await overflow(page)
        assert scroll <= inner, f"{path} is {scroll} px wide in a {inner} px window"


# ------------------------------------------------------------------------ a call, in Russian


async def test_a_call_pops_in_russian_with_the_companys_formats(
    settings: Settings,
    container: Container,
    replay: ReplayServer,
    browsers: Contexts,
    make_user: UserFactory,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Olga's profile says Russian (her browser says English): the pop, the call's states, the
    recent calls, the timeline and the money all in Russian; the result saved in Russian."""
    olga = await signing_in_as(
        make_user,
        OPERATOR,
        role="operator",
        extension="101",
        full_name="Olga Operator",
        locale="ru",
    )
    await seed_ivan(sessions, olga)
    with_ami(settings, replay)
    async with live_service(container) as service:
        page = await browsers.page(locale=BROWSER_LOCALE["en"])
        await sign_in_at_desk(page, service, OPERATOR)
        await expect(page.locator("#idle")).to_contain_text("Ждём звонков")
        await play(replay, "inbound_answered", speed=1)
        await expect(page.locator("#pop-name")).to_have_text("Ivan Petrov")
        # 150 000 ₽ as Russian writes it (a narrow no-break space between the thousands)
        amount = await page.locator("#pop-deal-amount").inner_text()
        assert re.fullmatch(r"150\s000\s₽", amount), amount
        await expect(page.locator("#pop-state")).to_have_text("Разговор", timeout=10_000)
        await expect(page.locator("#pop")).to_have_attribute("data-state", "ended", timeout=15_000)
        await expect(page.locator("#pop-state")).to_have_text("Завершён · принят")
        await expect(page.locator("#calls li").first).to_contain_text("принят")
        await page.click("#pop-open")
        first = page.locator("#timeline .tl-item").first
        await expect(first).to_contain_text("Входящий звонок")
        await expect(first).to_contain_text("разговор 0:08")
        # the result of the call: a callback titled in her language
        await page.select_option("#result-select", "call back later")
        await page.click("#result-save")
        await expect(page.locator("#result-status")).to_have_text("Сохранено")
        await expect(page.locator("#pop-tasks")).to_contain_text("Перезвонить: Ivan Petrov")
        async with sessions() as s:
            titles = (await s.scalars(select(Task.title).where(Task.kind == "callback"))).all()
        assert titles == ["Перезвонить: Ivan Petrov"]
