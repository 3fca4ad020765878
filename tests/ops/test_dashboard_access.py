"""The /ops dashboard without a browser: login and logout, the session and CSRF cookies, CSRF
refusals, who may see and who may act on every /ops route, 404s, and forms refused clearly."""

from __future__ import annotations

import re
import uuid
from http.cookies import SimpleCookie

import httpx
import msgspec
import pytest
from litestar.routes import HTTPRoute
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from api.app import create_app
from api.ops.auth import ACT, CSRF_COOKIE, OPS_PUBLIC_OPT, SESSION_COOKIE, OpsGuard
from api.request_context import RequestContext
from core.accounts.models import Role, User
from core.audit.models import AuditEntry
from core.db import create_sessionmaker
from core.settings import Settings, SettingsError, load_settings
from tests.fixtures.accounts import Account, MakeAccount
from tests.fixtures.ops import OpsBrowserFactory
from tests.fixtures.platform import serve

UNKNOWN = "00000000-0000-4000-8000-000000000000"
LOGIN_FORM_PATHS = {"/ops/login", "/ops/logout"}


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    """The response's Set-Cookie headers, by cookie name, with their attributes."""
    parsed = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        parsed.update({name: cookie for name in cookie})
    return parsed


def ops_routes(settings: Settings) -> list[tuple[str, str, HTTPRoute]]:
    """(method, path with ids filled in, route) for every page and action under /ops."""
    found = []
    for route in create_app(settings).routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/ops"):
            continue
        if route.path.startswith("/ops/static"):
            continue
        path = re.sub(r"\{[^}]+\}", UNKNOWN, route.path)
        for handler in route.route_handlers:
            found.extend((method, path, route) for method in handler.http_methods - {"OPTIONS"})
    return sorted(found, key=lambda item: (item[1], item[0]))


async def user_roles(engine: AsyncEngine, account: Account, roles: list[str]) -> None:
    async with create_sessionmaker(engine)() as session:
        await session.execute(
            update(User).where(User.id == uuid.UUID(account.user_id)).values(roles=roles)
        )
        await session.commit()


async def audit_of(engine: AsyncEngine, target_id: str) -> list[AuditEntry]:
    async with create_sessionmaker(engine)() as session:
        query = select(AuditEntry).where(AuditEntry.target_id == target_id).order_by(AuditEntry.id)
        return list((await session.execute(query)).scalars())


# Login, logout, the session ---------------------------------------------------------------------


async def test_anonymous_visitors_are_sent_to_the_login_form(
    ops_browser: OpsBrowserFactory,
) -> None:
    browser = await ops_browser()

    response = await browser.http.get("/ops/purchases", params={"q": "x"})

    assert response.status_code == 303
    assert response.headers["location"] == "/ops/login?next=/ops/purchases%3Fq%3Dx"
    login = await browser.open("/ops/login")
    assert login.status_code == 200
    assert 'name="password"' in login.text
    assert SESSION_COOKIE not in set_cookies(login), "a visitor gets no session"


async def test_admin_logs_in_with_secure_cookies_and_lands_where_they_were_going(
    ops_browser: OpsBrowserFactory, admin_account: Account
) -> None:
    browser = await ops_browser()
    form = await browser.open("/ops/login", next="/ops/audit")
    csrf = set_cookies(form)[CSRF_COOKIE][CSRF_COOKIE]

    response = await browser.submit(
        "/ops/login",
        {"email": admin_account.email, "password": admin_account.password, "next": "/ops/audit"},
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/ops/audit"
    session = set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]
    for cookie in (session, csrf):
        assert cookie["httponly"] is True
        assert cookie["secure"] is True
        assert cookie["samesite"] == "strict"
        assert cookie["path"] == "/ops"
    landed = await browser.open("/ops/audit")
    assert landed.status_code == 200
    assert admin_account.email in landed.text
    assert landed.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in landed.headers["content-security-policy"]


async def test_login_goes_nowhere_but_the_dashboard(
    ops_browser: OpsBrowserFactory, admin_account: Account
) -> None:
    browser = await ops_browser()
    await browser.open("/ops/login")

    response = await browser.submit(
        "/ops/login",
        {
            "email": admin_account.email,
            "password": admin_account.password,
            "next": "//evil.example/ops",
        },
    )

    assert response.headers["location"] == "/ops"


async def test_a_wrong_password_is_refused_on_the_form_and_counts_towards_the_lockout(
    ops_browser: OpsBrowserFactory, make_account: MakeAccount, settings: Settings
) -> None:
    account = await make_account(Role.ADMIN)
    browser = await ops_browser()

    for _ in range(settings.login_max_failures_per_account):
        wrong = await browser.submit("/ops/login", {"email": account.email, "password": "nope"})
        assert wrong.status_code == 401
        assert "Email or password is wrong." in wrong.text
        assert SESSION_COOKIE not in set_cookies(wrong)
    locked = await browser.submit(
        "/ops/login", {"email": account.email, "password": account.password}
    )

    assert locked.status_code == 429
    assert "Too many failed logins" in locked.text
    assert SESSION_COOKIE not in set_cookies(locked)


async def test_a_plain_user_cannot_log_in(
    ops_browser: OpsBrowserFactory, user_account: Account
) -> None:
    browser = await ops_browser()

    response = await browser.login(user_account.email, user_account.password)

    assert response.status_code == 403
    assert "needs the support or admin role" in response.text
    assert SESSION_COOKIE not in set_cookies(response)
    assert (await browser.http.get("/ops")).status_code == 303


async def test_login_replaces_a_session_id_the_browser_already_had(
    ops_browser: OpsBrowserFactory, admin_account: Account
) -> None:
    """An id someone planted before the login is not the one that gets logged in."""
    first = await ops_browser(admin_account)
    planted = first.session_id()

    second = await ops_browser()
    second.keep_session_id(planted)
    await second.login(admin_account.email, admin_account.password)

    assert second.session_id() not in (None, planted)
    assert (await first.http.get("/ops")).status_code == 303, "the old id is no longer a login"
    assert (await second.http.get("/ops")).status_code == 200


async def test_logout_ends_the_session_for_good(
    ops_browser: OpsBrowserFactory, admin_account: Account
) -> None:
    browser = await ops_browser(admin_account)
    session_id = browser.session_id()

    response = await browser.submit("/ops/logout")

    assert response.status_code == 303
    assert set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]["max-age"] == "0"
    replay = await ops_browser()
    replay.keep_session_id(session_id)
    assert (await replay.http.get("/ops")).status_code == 303


async def test_a_removed_role_locks_the_session_out_at_once(
    ops_browser: OpsBrowserFactory, make_account: MakeAccount, engine: AsyncEngine
) -> None:
    account = await make_account(Role.ADMIN)
    browser = await ops_browser(account)

    await user_roles(engine, account, [Role.USER])

    refused = await browser.open("/ops")
    assert refused.status_code == 403
    assert "support and admin roles" in refused.text


# CSRF -------------------------------------------------------------------------------------------


async def test_a_post_without_the_csrf_token_is_refused_and_does_nothing(
    ops_browser: OpsBrowserFactory,
    admin_account: Account,
    user_account: Account,
    engine: AsyncEngine,
) -> None:
    browser = await ops_browser(admin_account)
    grant = f"/ops/users/{user_account.user_id}/grant"

    forged = await browser.submit(grant, {"amount": "5", "reason": "forged"}, csrf=False)
    wrong = await browser.http.post(
        grant, data={"amount": "5", "reason": "forged", "_csrf_token": "0" * 128}
    )

    for response in (forged, wrong):
        assert response.status_code == 403
        assert "CSRF token verification failed" in response.text
    assert await audit_of(engine, user_account.user_id) == []
    card = await browser.open(f"/ops/users/{user_account.user_id}")
    assert re.search(r'id="balance">0<', card.text)


async def test_the_json_api_needs_no_csrf_token(
    client: httpx.AsyncClient, admin_account: Account
) -> None:
    response = await client.post("/api/diagnostics/pings", json={}, headers=admin_account.headers)

    assert response.status_code == 202


# Roles on every route ---------------------------------------------------------------------------


def test_every_ops_route_is_public_by_choice_or_guarded(settings: Settings) -> None:
    """New /ops routes are caught here if they forget the VIEW or ACT guard; every POST but the
    login form's own is an admin action."""
    unguarded, unsafe = [], []
    for method, path, route in ops_routes(settings):
        handler, _ = route.route_handler_map[method]
        # Litestar copies guards into each handler: compare what they admit, not identity.
        admitted = [g.roles for g in handler.resolve_guards() if isinstance(g, OpsGuard)]
        if not handler.opt.get(OPS_PUBLIC_OPT) and not admitted:
            unguarded.append(f"{method} {path}")
        if method == "POST" and path not in LOGIN_FORM_PATHS and ACT.roles not in admitted:
            unsafe.append(f"{method} {path}")
    assert (unguarded, unsafe) == ([], [])


async def test_support_sees_every_page_and_no_action(
    ops_browser: OpsBrowserFactory,
    support_account: Account,
    admin_account: Account,
    settings: Settings,
) -> None:
    support = await ops_browser(support_account)
    admin = await ops_browser(admin_account)
    routes = ops_routes(settings)
    card = f"/ops/users/{support_account.user_id}"  # a page admins act on: the grant form
    assert "<button" in _main((await admin.open(card)).text)

    for method, path, _ in routes:
        if method == "GET":
            path = path.replace(f"/ops/users/{UNKNOWN}", card)
            response = await support.open(path)
            assert response.status_code in (200, 404), (path, response.status_code)
            assert "<button" not in _main(response.text) or path == "/ops/login", path
    for method, path, _ in routes:
        if method == "POST" and path not in LOGIN_FORM_PATHS:
            response = await support.submit(path, {"amount": "1", "reason": "r", "one": "x"})
            assert response.status_code == 403, path
            assert "Only an admin may do this" in response.text


def _main(html: str) -> str:
    """The page without its header (logout is a button there) and its search/filter forms."""
    body = html.split("<main>", 1)[-1]
    return re.sub(r'<form class="inline" method="get".*?</form>', "", body, flags=re.S)


async def test_anonymous_visitors_reach_no_route_but_the_login_form(
    ops_browser: OpsBrowserFactory, settings: Settings
) -> None:
    browser = await ops_browser()
    await browser.open("/ops/login")

    for method, path, _ in ops_routes(settings):
        if path == "/ops/login":
            continue
        response = (
            await browser.http.get(path) if method == "GET" else await browser.submit(path, {})
        )
        assert response.status_code == 303, (method, path)
        assert response.headers["location"].startswith("/ops/login?next=")


# Not found, form errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (f"/ops/purchases/{UNKNOWN}", "purchase_not_found"),
        (f"/ops/subscriptions/{UNKNOWN}", "subscription_not_found"),
        (f"/ops/users/{UNKNOWN}", "user_not_found"),
    ],
)
async def test_unknown_ids_are_a_404_page(
    ops_browser: OpsBrowserFactory, support_account: Account, path: str, code: str
) -> None:
    browser = await ops_browser(support_account)

    response = await browser.open(path)

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert f"<code>{code}</code>" in response.text


async def test_an_admin_action_on_an_unknown_id_is_a_404_page(
    ops_browser: OpsBrowserFactory, admin_account: Account
) -> None:
    browser = await ops_browser(admin_account)

    response = await browser.submit(f"/ops/notifications/{UNKNOWN}/replay")

    assert response.status_code == 404
    assert "No such notification." in response.text


@pytest.mark.parametrize(
    ("form", "field_error"),
    [
        ({"amount": "50", "reason": "  "}, "A reason is required"),
        ({"amount": "50"}, "A reason is required"),
        ({"amount": "-3", "reason": "ticket 7"}, "A whole number of points"),
        ({"amount": "lots", "reason": "ticket 7"}, "A whole number of points"),
        ({"amount": "50", "reason": "x" * 501}, "At most 500 characters"),
    ],
    ids=["blank-reason", "no-reason", "negative", "not-a-number", "long-reason"],
)
async def test_a_grant_the_form_refuses_changes_nothing_and_says_why(
    ops_browser: OpsBrowserFactory,
    admin_account: Account,
    user_account: Account,
    engine: AsyncEngine,
    form: dict[str, str],
    field_error: str,
) -> None:
    browser = await ops_browser(admin_account)

    response = await browser.submit(f"/ops/users/{user_account.user_id}/grant", form)

    assert response.status_code == 400
    assert "Nothing was changed; correct the form." in response.text
    assert f'<span class="field-error">{field_error}' in response.text
    assert re.search(r'id="balance">0<', response.text)
    assert await audit_of(engine, user_account.user_id) == []


async def test_an_admin_grant_and_clawback_change_the_balance_and_are_audited(
    ops_browser: OpsBrowserFactory,
    admin_account: Account,
    user_account: Account,
    engine: AsyncEngine,
) -> None:
    browser = await ops_browser(admin_account)
    card = f"/ops/users/{user_account.user_id}"

    granted = await browser.submit(f"{card}/grant", {"amount": "70", "reason": "ticket 9"})
    await browser.open(card)
    clawed = await browser.submit(f"{card}/clawback", {"amount": "20", "reason": "ticket 10"})
    page = await browser.open(card)

    assert (granted.status_code, clawed.status_code) == (303, 303)
    assert "Took back 20 points. Balance 50, debt 0." in page.text
    assert re.search(r'id="balance">50<', page.text)
    grant, clawback = await audit_of(engine, user_account.user_id)
    assert (grant.action, grant.reason, grant.actor_email) == (
        "points.grant",
        "ticket 9",
        admin_account.email,
    )
    assert (clawback.action, clawback.before, clawback.after["balance"]) == (
        "points.clawback",
        {"balance": 70, "debt": 0},
        50,
    )


async def test_a_bad_filter_is_a_clear_400(
    ops_browser: OpsBrowserFactory, support_account: Account
) -> None:
    browser = await ops_browser(support_account)

    bad_state = await browser.open("/ops/purchases", state="lost")
    bad_status = await browser.open("/ops/notifications", status="lost")
    bad_actor = await browser.open("/ops/dead-letters", actor="nobody.ever")

    assert bad_state.status_code == 400
    assert "state: one of" in bad_state.text
    for response in (bad_status, bad_actor):
        assert response.status_code == 400
        assert "<code>validation_error</code>" in response.text


async def test_requeueing_nothing_or_a_dead_letter_that_is_gone_writes_no_audit_entry(
    ops_browser: OpsBrowserFactory, admin_account: Account, engine: AsyncEngine
) -> None:
    browser = await ops_browser(admin_account)
    gone = uuid.uuid4().hex

    nothing = await browser.submit("/ops/dead-letters/requeue", {})
    await browser.open("/ops/dead-letters")
    missing = await browser.submit("/ops/dead-letters/discard", {"one": gone})
    page = await browser.open("/ops/dead-letters")

    assert (nothing.status_code, missing.status_code) == (303, 303)
    assert "Discarded 0 dead letter(s). 1 were already gone." in page.text
    assert await audit_of(engine, gone) == []


# Settings ---------------------------------------------------------------------------------------


async def test_plain_http_cookies_only_when_allowed_and_never_in_production(
    settings: Settings, base_env: dict[str, str]
) -> None:
    plain = msgspec.structs.replace(settings, ops_allow_plain_http=True)
    async with serve(RequestContext(create_app(plain))) as url, httpx.AsyncClient() as client:
        form = await client.get(f"{url}/ops/login")
    cookie = set_cookies(form)[CSRF_COOKIE][CSRF_COOKIE]
    assert cookie["secure"] == ""
    assert cookie["httponly"] is True

    with pytest.raises(SettingsError, match="OPS_ALLOW_PLAIN_HTTP"):
        load_settings(
            {
                **base_env,
                "ENVIRONMENT": "production",
                "RUSTORE_API_URL": "https://127.0.0.1",
                "OPS_ALLOW_PLAIN_HTTP": "true",
            }
        )
