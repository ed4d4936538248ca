"""The bids page's filter form and the API tokens page in a real browser (Debian's chromium
driven by Playwright, against daphne), with the helpers of tests/test_browser.py."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest

from crawls import services
from crawls.demo.board import DEMO_RULES
from crawls.models import ApiToken, Bid, Source
from crawls.source_examples import RULES_EXAMPLES
from tests import fake_api
from tests.factories import new_bid
from tests.processes import program_env, start_daphne
from tests.test_browser import (  # noqa: F401 - browser and context are fixtures
    browser,
    context,
    log_in,
    screenshot,
    usable_by_daphne,
)

pytestmark = pytest.mark.django_db(transaction=True)  # daphne reads our rows


@pytest.fixture
def olivia(owner, workspace_a):
    return usable_by_daphne(owner, "pw-olivia-1")


def test_the_bids_filter_form_filters_and_keeps_more_filters_open(context, olivia, workspace_a):  # noqa: F811
    source = services.source_create(
        workspace=workspace_a,
        name="Seoul board",
        start_urls=["https://bids.example.org/notices"],
        rules=DEMO_RULES,
        schedule_timezone="Asia/Seoul",
    )
    Bid.objects.bulk_create(
        new_bid(source, title=f"도로 보수공사 {n}", views=n * 1000, department="Roads",
                amount=Decimal(n * 123_456_789), post_date=dt.date(2026, 3, 1 + n))
        for n in range(1, 6)
    )  # fmt: skip
    Bid.objects.bulk_create([new_bid(source, title="Park benches", views=99_999)])
    page = context.new_page()
    log_in(page, "olivia", "pw-olivia-1")
    page.get_by_role("link", name="Bids", exact=True).click()
    page.wait_for_url(re.compile(r"/bids/$"))
    assert page.locator("tr[data-bid]").count() == 6
    more = page.locator("details.more-filters")
    assert more.get_attribute("open") is None
    assert not page.get_by_label("Views at least").is_visible()  # behind "More filters"

    page.get_by_label("Search titles").fill("보수")
    page.get_by_text("More filters").click()
    page.get_by_label("Views at least").fill("3000")
    page.get_by_label("Order").select_option("-views")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"views_min=3000"))

    titles = page.locator("tr[data-bid] th a").all_inner_texts()
    assert titles == ["도로 보수공사 5", "도로 보수공사 4", "도로 보수공사 3"]
    assert more.get_attribute("open") == ""  # a filter in it is set: it stays open
    assert page.get_by_label("Search titles").input_value() == "보수"
    first = page.locator("tr[data-bid]").first
    assert "617,283,945" in first.inner_text()  # 5 * 123,456,789
    assert "5,000" in first.inner_text()
    screenshot(page, "dashboard-bids-filtered")

    page.get_by_role("link", name="Clear").click()
    page.wait_for_url(re.compile(r"/bids/$"))
    assert page.locator("tr[data-bid]").count() == 6


def test_a_token_made_on_the_tokens_page_is_shown_once_and_revoked(context, olivia, workspace_a):  # noqa: F811
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    log_in(page, "olivia", "pw-olivia-1")
    page.get_by_role("link", name="API tokens").click()
    page.wait_for_url(re.compile(r"/tokens/$"))
    page.get_by_text("No tokens yet.").wait_for()

    page.get_by_label("Name").fill("nightly export")
    page.get_by_role("button", name="Create token").click()
    raw = page.get_by_label("The new token").input_value()
    assert re.fullmatch(r"fst_[0-9a-f]{8}[\w-]{43}", raw)
    assert services.token_authenticate(raw=raw).name == "nightly export"
    copy = page.get_by_role("button", name="Copy")
    assert copy.is_visible()  # copy.js unhid it (no inline script: a module from static)
    copy.click()
    page.get_by_role("status").filter(has_text="Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == raw
    screenshot(page, "dashboard-token-created")

    page.reload()  # a GET: the token is not shown again
    assert page.get_by_label("The new token").count() == 0
    assert raw not in page.content()
    row = page.locator("tr[data-token-id]")
    assert row.count() == 1
    assert row.locator("[data-field=state]").inner_text() == "active"

    page.get_by_role("button", name="Revoke nightly export").click()
    page.get_by_role("status").filter(has_text="revoked.").wait_for()
    assert row.locator("[data-field=state]").inner_text().startswith("revoked ")
    assert page.get_by_role("button", name="Revoke nightly export").count() == 0
    assert ApiToken.objects.get().revoked_at is not None
    assert services.token_authenticate(raw=raw) is None
    screenshot(page, "dashboard-token-revoked")


@pytest.fixture
def api_and_daphne(tmp_path):
    """The fake open-data API (outside our walls in real life) and a daphne whose SSRF guard
    lets it through (CRAWL_ALLOWLIST): the session's daphne knows only the demo board."""
    open_api = fake_api.start()
    server = start_daphne(program_env(CRAWL_ALLOWLIST=open_api.address), tmp_path / "daphne.log")
    yield open_api, server
    server.stop()
    open_api.stop()


def test_a_json_source_with_a_secret_is_made_and_previewed_on_the_dashboard(
    browser,  # noqa: F811
    olivia,
    workspace_a,
    api_and_daphne,
):
    open_api, server = api_and_daphne
    own = browser.new_context(base_url=server.base_url)
    own.set_default_timeout(30_000)
    script_errors: list[str] = []
    own.on("page", lambda p: p.on("pageerror", lambda e: script_errors.append(str(e))))
    page = own.new_page()
    log_in(page, "olivia", "pw-olivia-1")
    page.goto("/sources/new/")
    rules = page.get_by_label("Rules")
    assert json.loads(rules.input_value()) == RULES_EXAMPLES["html"]  # prefilled
    page.get_by_label("Kind").select_option("json")  # source_kind.js swaps the example
    assert json.loads(rules.input_value()) == RULES_EXAMPLES["json"]
    page.get_by_label("Kind").select_option("ocds")
    assert json.loads(rules.input_value()) == RULES_EXAMPLES["ocds"]
    rules.fill(json.dumps(fake_api.JSON_RULES))
    page.get_by_label("Kind").select_option("json")  # rules someone wrote stay
    assert json.loads(rules.input_value()) == fake_api.JSON_RULES

    page.get_by_label("Name", exact=True).fill("Open data bids")
    page.get_by_label("Start urls").fill(f"{open_api.base_url}/bids")
    page.get_by_label("New secret 1: name").fill("service_key")
    page.get_by_label("New secret 1: value").fill(fake_api.SERVICE_KEY)

    # From here on: needs the JSON API parser and reader and Fetcher.fetch (issue 12 helpers).
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("heading", name=re.compile(r"^Records \(3")).wait_for()
    table = page.locator("table.preview-records")
    assert "Road repair 1" in table.inner_text()
    assert table.locator("tbody tr").count() == 3
    assert "pageNo=2" in page.locator("section.preview").inner_text()
    assert fake_api.SERVICE_KEY not in page.content()
    screenshot(page, "dashboard-source-json-preview")

    page.get_by_label("New secret 1: value").fill(fake_api.SERVICE_KEY)  # never shown again
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/sources/\d+/$"))
    source = Source.objects.get(name="Open data bids")
    assert (source.kind, source.secrets) == ("json", {"service_key": fake_api.SERVICE_KEY})
    assert page.locator("[name=secret__service_key]").get_attribute("placeholder") == "set"
    assert fake_api.SERVICE_KEY not in page.content()

    page.locator("[name=secret__service_key]").fill("wrong-key-123")
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("Publisher's error: SERVICE KEY IS NOT REGISTERED ERROR.").wait_for()
    assert "wrong-key-123" not in page.content()
    own.close()
    assert script_errors == []
