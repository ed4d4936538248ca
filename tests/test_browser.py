"""The dashboard and the admin in a real browser (Debian's chromium driven by Playwright),
against daphne, a Celery worker and the demo board: progress arrives live, without reloads."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright import sync_api

from crawls import services
from crawls.models import Bid, Membership
from project.celery import app as celery_app
from tests.factories import join

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
LIVE_TIMEOUT = 120_000  # ms: a whole demo crawl on a busy two-core machine
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.django_db(transaction=True)  # daphne and the worker read our rows


@pytest.fixture(scope="module")  # the async guard below is relaxed for this module only
def browser():
    """Debian's chromium (make test installs it); Playwright's own browsers are never used."""
    if not CHROMIUM.exists():  # pages are part of the product: no browser, no green suite
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous, so Django's async guard would refuse them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def context(browser, daphne_server):
    context = browser.new_context(base_url=daphne_server.base_url)
    context.set_default_timeout(30_000)
    script_errors = []

    def watch(page):
        page.on("pageerror", lambda error: script_errors.append(str(error)))

    context.on("page", watch)
    yield context
    context.close()
    assert script_errors == []  # uncaught exceptions in live.js (or anywhere on the pages)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def usable_by_daphne(user, password: str):
    """The suite hashes passwords with MD5, which daphne's settings do not accept."""
    hasher = PBKDF2PasswordHasher()
    user.password = hasher.encode(password, hasher.salt(), iterations=1000)
    user.save(update_fields=["password"])
    return user


def log_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"^http://[^/]+/$"))


def mark_loaded(page) -> None:
    """Leave a mark in the page's window: a reload or navigation would wipe it."""
    page.evaluate("window.__forestNoReload = true")


def assert_not_reloaded(page) -> None:
    assert page.evaluate("window.__forestNoReload === true")


def wait_for_percent(page, selector: str, percent: int = 100) -> None:
    page.wait_for_function(
        "([selector, percent]) => document.querySelector(selector)?.value === percent",
        arg=[selector, percent],
        timeout=LIVE_TIMEOUT,
    )


def test_a_crawl_started_on_the_dashboard_goes_live_to_100_percent(
    context, owner, demo_source, celery_worker
):
    usable_by_daphne(owner, "pw-olivia-1")
    overview = context.new_page()
    log_in(overview, "olivia", "pw-olivia-1")
    assert overview.get_by_role("heading", name="Seoul tenders").is_visible()
    mark_loaded(overview)  # stays open: the new crawl must appear here by itself

    page = context.new_page()
    page.goto("/")
    page.get_by_role("button", name="Start crawl of Demo board").click()
    page.wait_for_url(re.compile(r"/crawls/\d+/$"))
    crawl_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    mark_loaded(page)
    assert page.get_by_role("status").filter(has_text="queued.").count() == 1  # the message

    wait_for_percent(page, "progress[data-bar]")
    page.get_by_text("Succeeded", exact=True).first.wait_for()
    page.locator("[data-log] li", has_text="crawl.succeeded").wait_for()
    # The items table is refreshed from the server as crawl.items events arrive.
    found = set(Bid.objects.filter(first_crawl_id=crawl_id).values_list("title", flat=True))
    assert len(found) > 40
    page.wait_for_function(
        "n => document.querySelectorAll('[data-items] tr a').length >= n",
        arg=min(len(found), 50),
        timeout=LIVE_TIMEOUT,
    )
    shown = page.locator("[data-items] tr a").all_inner_texts()
    assert set(shown) <= found
    assert_not_reloaded(page)
    screenshot(page, "dashboard-crawl")

    # The overview was open before the crawl existed: its row arrived over the WebSocket.
    wait_for_percent(overview, f'tr[data-crawl="{crawl_id}"] progress[data-bar]')
    row = overview.locator(f'tr[data-crawl="{crawl_id}"]')
    assert row.locator("[data-field=status]").inner_text() == "Succeeded"
    assert row.locator("[data-field=source_name]").inner_text() == "Demo board"
    assert_not_reloaded(overview)
    screenshot(overview, "dashboard-overview")


def test_the_admin_crawl_page_shows_progress_live(context, workspace_a, demo_source, celery_worker):
    admin = get_user_model().objects.create_superuser("ada", "ada@example.org", "")
    usable_by_daphne(admin, "pw-ada-1")
    join(workspace=workspace_a, user=admin, role=Membership.Role.MEMBER)
    crawl = services.crawl_start(source=demo_source, workers=0)  # no worker yet: still queued

    page = context.new_page()
    log_in(page, "ada", "pw-ada-1")
    page.goto(f"/admin/crawls/crawl/{crawl.pk}/change/")
    bar = page.locator("progress[data-bar]")
    assert bar.evaluate("bar => bar.value") == 0
    assert page.locator("[data-live-crawl] [data-field=status]").inner_text() == "Queued"
    mark_loaded(page)

    celery_app.send_task("crawls.run", args=[crawl.pk], queue=settings.CRAWL_QUEUE)
    wait_for_percent(page, "progress[data-bar]")
    page.locator("[data-live-crawl] [data-field=status]", has_text="Succeeded").wait_for()
    assert int(page.locator("[data-live-crawl] [data-field=pages_done]").inner_text()) > 40
    assert_not_reloaded(page)
    screenshot(page, "admin-crawl")
