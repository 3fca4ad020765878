"""The ops dashboard in a real browser: Debian's headless chromium driven by Playwright's async
api, against the api served in-process and a real worker process.

Each test saves what it looked at, at a laptop's and at a phone's width, under
test-artifacts/screenshots/ (`<page>-desktop.png`, `<page>-phone.png`).
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Dialog, Page, async_playwright, expect

from core.queue import PURCHASE_SYNC, PURCHASE_VERIFY
from tests.fixtures.accounts import Account
from tests.fixtures.platform import send_job
from tests.fixtures.processes import PROJECT_ROOT
from tests.fixtures.purchases import Records, Shop, invoice_glob
from tests.fixtures.subscriptions import Subscriber
from tests.fixtures.webhooks import Webhooks

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 30_000

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
    pytest.mark.usefixtures("pipeline_worker"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            headless=True,
        )
        yield browser
        await browser.close()


@dataclass
class Dashboard:
    page: Page
    base_url: str

    async def open(self, path: str) -> None:
        await self.page.goto(self.base_url + path)

    async def login(self, account: Account, *, start: str = "/ops") -> None:
        """Go to `start`, get sent to the login form, log in, and come back to `start`."""
        await self.open(start)
        await expect(self.page).to_have_url(re.compile(r"/ops/login\?next="))
        await self.page.get_by_label("Email").fill(account.email)
        await self.page.get_by_label("Password").fill(account.password)
        await self.page.get_by_role("button", name="Log in").click()
        await expect(self.page).to_have_url(self.base_url + start)

    async def shoot(self, name: str) -> None:
        """Save the page as a laptop and as a phone show it."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            await self.page.set_viewport_size(viewport)
            await self.page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
        await self.page.set_viewport_size(DESKTOP)

    async def open_until(self, path: str, selector: str) -> None:
        """Reload `path` until `selector` shows (for what a worker makes asynchronously)."""
        deadline = time.monotonic() + WAIT_MS / 1000
        while True:
            await self.open(path)
            if await self.page.locator(selector).count():
                return
            assert time.monotonic() < deadline, f"{selector} never showed on {path}"
            await self.page.wait_for_timeout(300)


@pytest.fixture
async def dashboard(chromium: Browser, api_url: str) -> AsyncIterator[Dashboard]:
    context = await chromium.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    page = await context.new_page()

    async def accept(dialog: Dialog) -> None:
        await dialog.accept()

    page.on("dialog", accept)  # the confirm() before discards and refunds
    yield Dashboard(page, api_url)
    await context.close()


async def test_admin_sees_the_overview_follow_purchases_as_they_happen(
    dashboard: Dashboard,
    shop: Shop,
    records: Records,
    admin_account: Account,
    user_account: Account,
) -> None:
    page = dashboard.page
    await dashboard.login(admin_account)
    await expect(page.get_by_role("heading", name=re.compile("Overview"))).to_be_visible()
    await expect(page.locator('[data-count="workers"]')).not_to_have_text("0")
    credited = '[data-count="purchases.credited"]'
    before = (
        int(await page.locator(credited).inner_text())
        if await page.locator(credited).count()
        else 0
    )
    await page.evaluate("window.notReloaded = true")

    for _ in range(2):
        bought = await shop.buy(user_account, "coins_100")
        await records.wait_final(bought.payment_id)

    await page.wait_for_function(
        "([selector, count]) => Number(document.querySelector(selector)?.textContent) >= count",
        arg=[credited, before + 2],
        timeout=WAIT_MS,
    )
    assert await page.evaluate("window.notReloaded") is True, "the counts refresh in place"
    await expect(page.locator('[data-count="jobs.purchase.verify.processed"]')).not_to_have_text(
        "0"
    )
    await dashboard.shoot("overview")


async def test_a_dead_letter_is_requeued_from_the_page_and_processed(
    dashboard: Dashboard,
    shop: Shop,
    records: Records,
    admin_account: Account,
    user_account: Account,
) -> None:
    """A refund check that RuStore keeps failing dies; once RuStore answers again, an admin
    requeues it from the page and the refund goes through."""
    bought = await shop.buy(user_account, "coins_100")
    purchase = await records.wait_final(bought.payment_id)
    shop.sandbox.control.refund(bought.invoice_id)
    shop.sandbox.control.set_fault(invoice_glob(bought.invoice_id), error_rate=1)
    send_job(os.environ["REDIS_URL"], PURCHASE_SYNC, str(purchase.id), max_retries=0)
    page = dashboard.page
    await dashboard.login(admin_account, start="/ops/dead-letters?actor=purchase.sync")

    letter_selector = f'article.letter:has-text("{purchase.id}")'
    await dashboard.open_until("/ops/dead-letters?actor=purchase.sync", letter_selector)
    letter = page.locator(letter_selector)
    await expect(letter).to_contain_text("Something went wrong")
    await letter.locator("summary", has_text="traceback").click()
    await expect(letter.locator("pre")).to_contain_text("Traceback")
    await dashboard.shoot("dead-letters")
    assert (await records.purchase(purchase.id)).state == "credited"

    shop.sandbox.control.clear_faults()
    await letter.get_by_role("button", name="Requeue").click()

    await expect(page.locator(".flash")).to_have_text("Requeued 1 dead letter(s).")
    await expect(page.locator(letter_selector)).to_have_count(0)
    await records.wait_for(purchase.id, lambda row: row.state == "refunded")
    await dashboard.open(f"/ops/purchases/{purchase.id}")
    await expect(page.locator("dl.facts").first).to_contain_text("refunded")
    await dashboard.open("/ops/audit?target=dead_letter")
    entry = page.locator('tr[data-action="dead_letter.requeue"]').first
    await expect(entry).to_contain_text(admin_account.email)
    await dashboard.shoot("audit")


async def test_a_purchase_is_found_by_its_invoice_and_its_timeline_read(
    dashboard: Dashboard,
    shop: Shop,
    records: Records,
    admin_account: Account,
    user_account: Account,
) -> None:
    bought = await shop.buy(user_account, "coins_500", two_stage=True)
    await records.wait_final(bought.payment_id)
    page = dashboard.page
    await dashboard.login(admin_account, start="/ops/purchases")

    await page.get_by_role("searchbox").fill(str(bought.invoice_id))
    await page.get_by_role("button", name="Search").click()
    rows = page.locator("tr[data-purchase-id]")
    await expect(rows).to_have_count(1)
    await dashboard.shoot("purchases")
    await rows.get_by_role("link", name=bought.payment_id).click()

    await expect(page).to_have_url(f"{dashboard.base_url}/ops/purchases/{bought.payment_id}")
    kinds = await page.locator("#timeline li").evaluate_all(
        "items => items.map(i => i.dataset.kind)"
    )
    assert kinds[:2] == ["submitted", "enqueued"], kinds
    assert kinds.index("attempt") < kinds.index("rustore_call") < kinds.index("credit"), kinds
    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text("confirm_purchase")
    await expect(timeline).to_contain_text("+500 points")
    await dashboard.shoot("purchase")


async def test_support_sees_everything_but_no_action_and_a_forged_post_is_refused(
    dashboard: Dashboard, support_account: Account, user_account: Account, api_url: str
) -> None:
    bogus = f"not-a-purchase-{uuid.uuid4().hex}"
    send_job(os.environ["REDIS_URL"], PURCHASE_VERIFY, bogus, max_retries=0)
    page = dashboard.page
    await dashboard.login(support_account)
    await expect(page.locator(".badge")).to_have_text("support · read only")

    letter_selector = f'article.letter:has-text("{bogus}")'
    await dashboard.open_until("/ops/dead-letters", letter_selector)
    main = page.locator("main")
    await expect(main.get_by_role("button", name=re.compile("Requeue|Discard"))).to_have_count(0)
    await expect(main.locator("input[type=checkbox]")).to_have_count(0)
    await dashboard.shoot("dead-letters-support")
    message_id = await page.locator(letter_selector).get_attribute("data-message-id")
    await dashboard.open(f"/ops/users/{user_account.user_id}")
    await expect(main.get_by_role("button", name=re.compile("Grant|Claw back"))).to_have_count(0)

    token = await page.locator('input[name="_csrf_token"]').first.get_attribute("value")
    forged = await page.request.post(
        f"{api_url}/ops/dead-letters/discard",
        form={"one": str(message_id), "_csrf_token": str(token)},
        max_redirects=0,
    )

    assert forged.status == 403
    assert "Only an admin may do this" in await forged.text()
    await dashboard.open("/ops/dead-letters")
    await expect(page.locator(letter_selector)).to_have_count(1)


async def test_admin_grants_points_with_a_reason_replays_a_notification_and_reads_every_page(
    dashboard: Dashboard,
    webhooks: Webhooks,
    subscriber: Subscriber,
    shop: Shop,
    admin_account: Account,
    user_account: Account,
) -> None:
    """The remaining pages, each used once the way ops would: users, notifications,
    subscriptions; the grant form refuses a grant without a reason."""
    created = await shop.pay_in_rustore(user_account, "coins_100")
    body = webhooks.invoice_body(created, "CONFIRMED")
    assert (await webhooks.post(body)).status_code == 200
    await webhooks.wait_done(webhooks.id_of(body))
    subscribed = await subscriber.subscribe(user_account)
    page = dashboard.page
    await dashboard.login(admin_account, start="/ops/users")

    await page.get_by_role("searchbox").fill(user_account.email)
    await page.get_by_role("button", name="Search").click()
    await dashboard.shoot("users")
    await page.get_by_role("link", name=user_account.email).click()
    balance = int(await page.locator("#balance").inner_text())
    await page.get_by_label("Points").fill("25")
    await page.get_by_role("button", name="Grant").click()
    await expect(page.locator(".field-error")).to_contain_text("A reason is required")
    await expect(page.locator("#balance")).to_have_text(str(balance))
    await page.get_by_label(re.compile("Reason")).fill("goodwill, ticket 77")
    await page.get_by_role("button", name="Grant").click()
    await expect(page.locator(".flash")).to_contain_text("Granted 25 points")
    await expect(page.locator("#balance")).to_have_text(str(balance + 25))
    await dashboard.shoot("user")

    await dashboard.open("/ops/notifications")
    row = page.locator("tr[data-notification-id]").first
    await expect(row).to_contain_text("INVOICE_STATUS")
    await dashboard.shoot("notifications")
    await row.get_by_role("button", name="Replay").click()
    await expect(page.locator(".flash")).to_contain_text("sent for processing again")

    await dashboard.open(f"/ops/subscriptions?q={user_account.user_id}")
    await page.get_by_role("link", name=subscribed.id).click()
    await expect(page.locator("dl.facts").first).to_contain_text("active")
    await expect(page.get_by_role("button", name="Refund")).to_be_visible()
    await dashboard.shoot("subscription")
    await dashboard.open("/ops/subscriptions")
    await dashboard.shoot("subscriptions")

    await dashboard.open("/ops/audit")
    actions = await page.locator("tr[data-action]").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    assert {"points.grant", "notification.replay"} <= set(actions[:5]), actions
    await dashboard.open("/ops/login")
    await dashboard.shoot("login")
