"""Removed and cancelled notices (docs/crawling.md, "Removed notices"): a bid that complete crawls
no longer see is marked removed after BID_REMOVED_AFTER_CRAWLS of them, and live again when seen;
never after a capped, cancelled, degraded crawl or one whose listing page failed. Status changes
to cancelled are revisions. Crawls of the real demo board (its takedown control)."""

from __future__ import annotations

import json
import urllib.request

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from crawls import events, services
from crawls.demo.board import DEMO_RULES, notices, tenders
from crawls.demo.data import OK
from crawls.engine import quality, run
from crawls.models import Bid, BidRevision, Crawl, CrawlEvent, Source
from tests.crawling import wait_for_crawl
from tests.factories import make_bid, make_source

pytestmark = pytest.mark.django_db(transaction=True)


def take_down(board, ids) -> None:
    """Hide notices `ids` of the board (exactly those; [] shows every notice again)."""
    request = urllib.request.Request(  # noqa: S310 - our own board
        f"{board.base_url}/_control/takedown",
        data=json.dumps({"ids": sorted(ids)}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert json.load(response)["ids"] == sorted(ids)


def taken(board, count=2) -> list[int]:
    """Ids of well-behaved notices of the board (their pages answer 200 at once)."""
    return [n.id for n in notices(board.config) if n.status == OK and not n.slow][:count]


def bids_of(source, ids) -> dict[str, Bid]:
    return {b.url: b for b in Bid.objects.filter(source=source, url__in=paths(source, ids))}


def paths(source, ids) -> list[str]:
    base = source.start_urls[0].rsplit("/notices", 1)[0]
    return [f"{base}/notices/{i}" for i in ids]


def crawl_here(source, **kw) -> Crawl:
    """A crawl run to its end in this process (the in-process engine, as the worker runs it)."""
    crawl = services.crawl_start(source=source, workers=0, **kw)
    run.crawl_run(crawl.pk, owner="test")
    crawl.refresh_from_db()
    return crawl


def removed_events(crawl) -> list[int]:
    ids = []
    for event in CrawlEvent.objects.filter(crawl=crawl, type=events.ITEMS).order_by("sequence"):
        ids += event.payload.get("removed", [])
    return ids


# --- Through the worker: K = 2 (the default) ----------------------------------------------------


def test_presence_marks_removed_after_k_complete_crawls_and_live_again_when_seen(
    celery_worker, owner, demo_source, board
):
    def crawl():
        done = wait_for_crawl(services.crawl_start(source=demo_source, user=owner), timeout=180)
        assert done.status == Crawl.Status.SUCCEEDED, done.error
        return done

    crawl()
    everyone = Bid.objects.filter(source=demo_source).count()
    gone = taken(board)
    take_down(board, gone)

    first = crawl()  # one miss: not removed yet
    missed = bids_of(demo_source, gone)
    assert len(missed) == 2
    assert {(b.missed_crawls, b.removed_at) for b in missed.values()} == {(1, None)}
    assert not Bid.objects.filter(source=demo_source, missed_crawls__gt=0).exclude(
        pk__in=[b.pk for b in missed.values()]
    )
    assert removed_events(first) == []

    second = crawl()  # the second complete crawl in a row: removed
    removed = bids_of(demo_source, gone)
    assert all(b.removed_at is not None and b.missed_crawls == 2 for b in removed.values())
    ids = sorted(b.pk for b in removed.values())
    assert removed_events(second) == ids
    revisions = BidRevision.objects.filter(bid_id__in=ids, crawl=second)
    assert sorted(r.changes["removed"] for r in revisions) == [[False, True]] * 2
    assert Bid.objects.filter(source=demo_source, removed_at__isnull=True).count() == everyone - 2

    take_down(board, [])
    back = crawl()
    live = bids_of(demo_source, gone)
    assert {(b.missed_crawls, b.removed_at) for b in live.values()} == {(0, None)}
    revisions = BidRevision.objects.filter(bid_id__in=ids, crawl=back)
    assert [r.changes for r in revisions] == [{"removed": [True, False]}] * 2
    changed = []
    for event in CrawlEvent.objects.filter(crawl=back, type=events.ITEMS):
        changed += event.payload["changed"]
    assert sorted(changed) == ids
    assert (back.items_new, back.items_changed) == (0, 2)
    assert removed_events(back) == []


# --- In this process, K = 1: crawls that remove nothing -----------------------------------------


@pytest.fixture
def one_miss(settings, workspace_a, board):
    """A source crawled once completely, then two of its notices taken down; one miss removes."""
    settings.BID_REMOVED_AFTER_CRAWLS = 1
    source = make_source(workspace_a, start_urls=[f"{board.base_url}/notices"], max_pages=5000)
    assert crawl_here(source).status == Crawl.Status.SUCCEEDED
    take_down(board, taken(board))
    return source


def quality_checks_off(source) -> None:
    """Only the presence rule under test decides: no quality check can make the crawl degraded
    (a capped or failing crawl reads fewer items than the last one; docs/quality.md)."""
    source.quality_thresholds = dict.fromkeys(django_settings.QUALITY_THRESHOLDS)


def assert_nothing_removed(source) -> None:
    assert not Bid.objects.filter(source=source, removed_at__isnull=False).exists()
    assert not Bid.objects.filter(source=source, missed_crawls__gt=0).exists()
    assert not BidRevision.objects.filter(bid__source=source, changes__has_key="removed").exists()


def test_presence_complete_crawl_with_k_1_removes_at_once(one_miss, board):
    crawl = crawl_here(one_miss)
    assert (crawl.status, crawl.capped) == (Crawl.Status.SUCCEEDED, False)
    removed = Bid.objects.filter(source=one_miss, removed_at__isnull=False)
    assert sorted(b.url for b in removed) == sorted(paths(one_miss, taken(board)))
    assert removed_events(crawl) == sorted(b.pk for b in removed)


def test_presence_source_that_tracks_no_removals_removes_nothing(one_miss):
    one_miss.track_removals = False  # e.g. an API queried by a date window: a partial list
    one_miss.save()
    crawl = crawl_here(one_miss)
    assert (crawl.status, crawl.capped) == (Crawl.Status.SUCCEEDED, False)
    assert_nothing_removed(one_miss)


@pytest.mark.parametrize("bound", [{"max_pages": 10}, {"max_depth": 1}])
def test_presence_capped_crawl_removes_nothing(one_miss, bound):
    for name, value in bound.items():
        setattr(one_miss, name, value)
    quality_checks_off(one_miss)
    one_miss.save()
    crawl = crawl_here(one_miss)
    assert (crawl.status, crawl.capped) == (Crawl.Status.SUCCEEDED, True)
    assert_nothing_removed(one_miss)
    assert removed_events(crawl) == []


def test_presence_cancelled_crawl_removes_nothing(one_miss):
    crawl = services.crawl_start(source=one_miss, workers=0)
    services.crawl_cancel(crawl=crawl)
    run.crawl_run(crawl.pk, owner="test")
    crawl.refresh_from_db()
    assert crawl.status == Crawl.Status.CANCELLED
    assert_nothing_removed(one_miss)


def test_presence_degraded_crawl_removes_nothing(one_miss, monkeypatch):
    # The quality helper builds the real check; here a crawl that it finds degraded.
    monkeypatch.setattr(
        quality, "crawl_assess", lambda crawl: quality.Assessment(reasons=("items fell",))
    )
    crawl = crawl_here(one_miss)
    assert crawl.status == Crawl.Status.DEGRADED
    assert_nothing_removed(one_miss)


def test_presence_crawl_with_a_failed_listing_page_removes_nothing(one_miss, board):
    one_miss.start_urls = [*one_miss.start_urls, f"{board.base_url}/notices/page/99"]  # 404
    one_miss.save()
    crawl = crawl_here(one_miss)
    assert (crawl.status, crawl.capped) == (Crawl.Status.SUCCEEDED, False)
    assert crawl.frontier.filter(kind="list", state="failed").count() == 1
    assert_nothing_removed(one_miss)


def test_presence_failed_item_page_counts_its_bid_as_seen(one_miss, board):
    take_down(board, [])
    # Every item page fails this time (its title is not found): still linked, so not missed.
    fields = {**DEMO_RULES["fields"], "title": {"css": "h1.none", "type": "text", "required": True}}
    one_miss.rules = {**DEMO_RULES, "fields": fields}
    quality_checks_off(one_miss)
    one_miss.save()
    Bid.objects.filter(source=one_miss).update(etag="", last_modified="")  # no 304 answers
    crawl = crawl_here(one_miss)
    assert crawl.status == Crawl.Status.SUCCEEDED
    assert not Bid.objects.filter(source=one_miss, last_crawl=crawl).exists()
    assert crawl.frontier.filter(kind="item", state="failed").count() > 40
    assert_nothing_removed(one_miss)


# --- Cancelled notices are revisions -------------------------------------------------------------


def set_epoch(board, epoch: int) -> None:
    with urllib.request.urlopen(  # noqa: S310 - our own board
        f"{board.base_url}/_control/epoch?set={epoch}", timeout=60
    ) as response:
        assert json.load(response)["epoch"] == epoch


@pytest.mark.parametrize("name", ["Demo eGov board", "Demo OCDS feed"])
def test_status_change_to_cancelled_is_a_revision(workspace_a, board, name):
    """HTML rules (the eGov board's `status` cell) and OCDS (tender.status) alike."""
    services.demo_source_ensure(workspace=workspace_a, base_url=board.base_url, every_kind=True)
    source = Source.objects.get(workspace=workspace_a, name=name)
    assert crawl_here(source).status == Crawl.Status.SUCCEEDED
    assert not Bid.objects.filter(source=source, status="cancelled").exists()
    set_epoch(board, 4)
    crawl = crawl_here(source)
    assert crawl.status == Crawl.Status.SUCCEEDED
    cancelled = {t.notice.id for t in tenders(board.config, 4) if t.status == "cancelled"} & {
        t.notice.id for t in tenders(board.config, 0)
    }
    assert len(cancelled) >= 2
    revised = BidRevision.objects.filter(
        bid__source=source, crawl=crawl, changes__status=["active", "cancelled"]
    )
    assert revised.values("bid").distinct().count() == len(cancelled)
    assert Bid.objects.filter(source=source, status="cancelled").count() == len(cancelled)


# --- The API's filters ---------------------------------------------------------------------------


def test_bid_list_filters_presence_and_status(
    api, owner, workspace_a, source_a, django_assert_max_num_queries
):
    now = timezone.now()
    live = make_bid(source_a, title="live", status="active")
    removed = make_bid(source_a, title="removed", status="active", removed_at=now, missed_crawls=2)
    cancelled = make_bid(source_a, title="cancelled", status="cancelled")
    api.force_authenticate(owner)

    def ids(query):
        with django_assert_max_num_queries(2):  # the caller's workspace ids, the page
            response = api.get("/api/v1/bids/", query)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids({}) == {live.pk, removed.pk, cancelled.pk}
    assert ids({"presence": "live"}) == {live.pk, cancelled.pk}
    assert ids({"presence": "removed"}) == {removed.pk}
    assert ids({"status": "cancelled"}) == {cancelled.pk}
    assert ids({"presence": "live", "status": "active"}) == {live.pk}
    row = api.get(f"/api/v1/bids/{removed.pk}/").json()
    assert row["missed_crawls"] == 2
    assert row["removed_at"] is not None
    assert api.get("/api/v1/bids/", {"presence": "gone"}).status_code == 400


@pytest.mark.django_db
def test_presence_track_removals_is_a_source_setting_of_the_api(owner, source_a, as_user):
    client = as_user(owner)
    assert client.get(f"/api/v1/sources/{source_a.pk}/").json()["track_removals"] is True
    patched = client.patch(f"/api/v1/sources/{source_a.pk}/", {"track_removals": False}, "json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["track_removals"] is False
    source_a.refresh_from_db()
    assert source_a.track_removals is False
