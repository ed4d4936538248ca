"""Every kind of source crawled end to end from the demo board through real Celery workers,
PostgreSQL and Redis: a JSON API behind a key, a data.go.kr-style XML service, an OCDS feed and
an eGovFrame board reached only by POST forms. Exact items and fields; re-crawls that amend and
cancel; pagination that stops where it should; a wrong key failing with the publisher's
message; secrets that never leave the fetcher."""

from __future__ import annotations

import copy

import pytest

from crawls import services
from crawls.demo import board as demo
from crawls.demo import feeds
from crawls.demo.tenders import expected_feed_bids, expected_ocds_bids
from crawls.models import Bid, BidRevision, Crawl, CrawlEvent, FrontierUrl, Source
from tests.crawling import wait_for_crawl
from tests.processes import http_get

pytestmark = pytest.mark.django_db(transaction=True)

EPOCH = 4  # the board's epoch that amends and cancels tenders
COLUMNS = (
    "title", "department", "reference", "views", "amount", "post_date", "deadline", "currency",
    "status",
)  # fmt: skip
SHAPES = {  # kind, start path, rules, secrets
    "json": (Source.Kind.JSON, demo.API_PATH, demo.DEMO_JSON_RULES, {"api_key": demo.DEMO_API_KEY}),
    "xml": (
        Source.Kind.XML,
        demo.XML_PATH,
        demo.DEMO_XML_RULES,
        {"service_key": demo.DEMO_SERVICE_KEY},
    ),
    "egov": (Source.Kind.HTML, demo.EGOV_LIST_PATH, demo.DEMO_EGOV_RULES, {}),
    "ocds": (Source.Kind.OCDS, demo.OCDS_RELEASES_PATH, demo.DEMO_OCDS_RULES, {}),
}


def _source(workspace, board, shape: str, *, rules=None, secrets=None, **values) -> Source:
    kind, path, shape_rules, shape_secrets = SHAPES[shape]
    return services.source_create(
        workspace=workspace,
        name=f"{shape} {len(values)} {id(rules)}",
        kind=kind,
        start_urls=[f"{board.base_url}{path}"],
        rules=shape_rules if rules is None else rules,
        secrets=shape_secrets if secrets is None else secrets,
        **{"max_pages": 5000, **values},
    )


def _stored(source: Source, shape: str) -> dict[str, dict]:
    """Bids by their key (the notice's reference; the ocid for OCDS), as the expected data."""
    stored = {}
    for bid in Bid.objects.filter(source=source):
        key = bid.extra["ocid"] if shape == "ocds" else bid.reference
        fields = {name: getattr(bid, name) for name in COLUMNS}
        if shape == "ocds":
            del fields["views"]
            fields["procurement_method"] = bid.procurement_method
            fields["classifications"] = bid.classifications
        stored[key] = fields
    return stored


def _expected(board, shape: str, epoch: int = 0) -> dict[str, dict]:
    if shape == "ocds":
        return expected_ocds_bids(board.config, epoch=epoch)
    return expected_feed_bids(board.config, epoch=epoch)


def _crawl(source: Source) -> Crawl:
    return wait_for_crawl(services.crawl_start(source=source), timeout=180)


def _epoch(board, epoch: int) -> None:
    status, _ = http_get(f"{board.base_url}/_control/epoch?set={epoch}")
    assert status == 200


@pytest.mark.parametrize("shape", list(SHAPES))
def test_each_kind_stores_exactly_the_expected_items(celery_worker, workspace_a, board, shape):
    source = _source(workspace_a, board, shape)
    crawl = _crawl(source)
    assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
    expected = _expected(board, shape)
    assert _stored(source, shape) == expected
    assert (crawl.items_new, crawl.items_changed) == (len(expected), 0)
    # The flaky page answered 500 once and was fetched again; nothing was lost.
    assert crawl.errors.get("http_5xx", 0) == 0


@pytest.mark.parametrize("shape", list(SHAPES))
def test_re_crawls_amend_and_cancel_with_revisions(celery_worker, workspace_a, board, shape):
    source = _source(workspace_a, board, shape)
    assert _crawl(source).status == Crawl.Status.SUCCEEDED
    before = _expected(board, shape)
    _epoch(board, EPOCH)
    crawl = _crawl(source)
    assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
    after = _expected(board, shape, EPOCH)
    assert _stored(source, shape) == after
    changed = {key for key in before.keys() & after.keys() if before[key] != after[key]}
    cancelled = {key for key, fields in after.items() if fields["status"] == "cancelled"}
    assert cancelled, "the epoch cancels some tenders"
    assert changed >= {key for key in cancelled if key in before}
    assert crawl.items_new == len(after.keys() - before.keys())
    if shape != "ocds":  # OCDS: one revision per release, checked below
        assert crawl.items_changed == len(changed)
    revised = {}
    for revision in BidRevision.objects.filter(bid__source=source, crawl=crawl):
        bid = revision.bid
        key = bid.extra["ocid"] if shape == "ocds" else bid.reference
        revised.setdefault(key, []).append(revision.changes)
    assert set(revised) == changed
    for key in cancelled & changed:
        assert revised[key][-1].get("status", ["?", "cancelled"])[1] == "cancelled" or any(
            r.get("status") == ["active", "cancelled"] for r in revised[key]
        )


def test_a_newest_first_ocds_feed_keeps_each_tenders_latest_release(
    celery_worker, workspace_a, board
):
    """The demo feed lists releases newest first, across pages: a first crawl at a late epoch
    reads a tender's amendment before its original release. The latest release wins (an older
    one read later is not applied over it), so the stored state is the feed's current one.
    (Several releases of one ocid within one batch are revisions in date order: test_requests.)"""
    _epoch(board, EPOCH)
    source = _source(workspace_a, board, "ocds")
    crawl = _crawl(source)
    assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
    assert _stored(source, "ocds") == _expected(board, "ocds", EPOCH)
    latest = {}
    for release in feeds.releases(board.config, EPOCH):
        if release["ocid"] not in latest or release["date"] > latest[release["ocid"]]["date"]:
            latest[release["ocid"]] = release
    several = {r["ocid"] for r in feeds.releases(board.config, EPOCH) if r["id"][-2:] != "01"}
    assert several, "the epoch amends or cancels some tenders"
    for bid in Bid.objects.filter(source=source):
        assert bid.version.endswith("|" + latest[bid.extra["ocid"]]["id"])


@pytest.mark.parametrize(
    ("style", "pagination"),
    [
        ("page", {"style": "page", "start": 1, "size": 7}),
        ("offset", {"style": "offset", "start": 0, "size": 7}),
        ("cursor", {"style": "cursor", "size": 7, "cursor": "meta.next_cursor"}),
        ("next", {"style": "next", "size": 7, "next": "links.next"}),
        ("link", {"style": "link", "size": 7}),
    ],
)
def test_each_pagination_style_reaches_every_item_and_stops(
    celery_worker, workspace_a, board, style, pagination
):
    rules = copy.deepcopy(demo.DEMO_JSON_RULES)
    rules["pagination"] = pagination
    query = {"page": {"page": "{page}", "per_page": "{limit}"}}.get(style, {"limit": "{limit}"})
    if style == "offset":
        query = {"offset": "{offset}", "limit": "{limit}"}
    if style == "cursor":
        query = {"cursor": "{cursor}", "limit": "{limit}"}
    rules["request"]["query"] = query
    source = _source(workspace_a, board, "json", rules=rules)
    crawl = _crawl(source)
    assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
    expected = _expected(board, "json")
    assert _stored(source, "json") == expected
    pages = -(-len(expected) // 7)
    # Every page once; at most one empty page past the end (a style without a total).
    assert pages <= crawl.pages_done <= pages + 1


def test_a_page_cap_stops_the_api_crawl(celery_worker, workspace_a, board):
    rules = copy.deepcopy(demo.DEMO_JSON_RULES)
    rules["pagination"] = {"style": "page", "start": 1, "size": 5, "max_pages": 2}
    source = _source(workspace_a, board, "json", rules=rules)
    crawl = _crawl(source)
    assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
    assert crawl.pages_done == 2
    assert Bid.objects.filter(source=source).count() == 10


@pytest.mark.parametrize(
    ("shape", "message"),
    [("json", "API key"), ("xml", "SERVICE_KEY_IS_NOT_REGISTERED_ERROR")],
)
def test_a_wrong_key_fails_the_crawl_with_the_publishers_message(
    celery_worker, workspace_a, board, shape, message
):
    name = "api_key" if shape == "json" else "service_key"
    source = _source(workspace_a, board, shape, secrets={name: "wrong-key-0123456789"})
    crawl = _crawl(source)
    assert crawl.status == Crawl.Status.FAILED
    assert crawl.error.startswith("publisher error: ")
    assert message.lower() in crawl.error.lower()
    assert not Bid.objects.filter(source=source).exists()
    assert "wrong-key-0123456789" not in crawl.error


def test_a_sources_secret_never_leaves_the_fetcher(celery_worker, workspace_a, board):
    source = _source(workspace_a, board, "xml")
    crawl = _crawl(source)
    assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
    secret = demo.DEMO_SERVICE_KEY
    for event in CrawlEvent.objects.filter(crawl=crawl):
        assert secret not in repr(event.payload)
    for url, request in FrontierUrl.objects.filter(crawl=crawl).values_list("url", "request"):
        assert secret not in url
        assert secret not in repr(request)
        assert "secret.service_key" in url
    assert secret not in repr(Crawl.objects.filter(pk=crawl.pk).values().get())
    assert secret not in celery_worker.output()


def test_post_form_items_are_identified_by_their_request(celery_worker, workspace_a, board):
    source = _source(workspace_a, board, "egov")
    crawl = _crawl(source)
    assert crawl.status == Crawl.Status.SUCCEEDED, crawl.error
    items = FrontierUrl.objects.filter(crawl=crawl, kind="item")
    assert items.count() == len(_expected(board, "egov"))
    # One URL, one notice per body: the frontier tells them apart by their request.
    assert set(items.values_list("url", flat=True)) == {f"{board.base_url}{demo.EGOV_VIEW_PATH}"}
    assert {r["method"] for r in items.values_list("request", flat=True)} == {"POST"}
    # A re-crawl of an unchanged board changes nothing.
    again = _crawl(source)
    assert (again.items_new, again.items_changed) == (0, 0)
    assert again.items_unchanged == len(_expected(board, "egov"))
