"""The crawls API: scoping of sources and crawls, roles, starting crawls (202, 409, 429), cancel
and retry, the event log and frontier, query counts, and one crawl end to end (the sources API
itself: test_api_sources.py)."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from crawls import events, services
from crawls.api.throttles import CrawlCreateThrottle
from crawls.demo.board import DEMO_RULES, expected_bids
from crawls.engine import urls
from crawls.models import Bid, Crawl, CrawlEvent, FrontierUrl, Membership, Source
from tests.clients import API, bearer, error_of
from tests.factories import START, absent_pk, finish_crawl, join, make_source, start_crawl

pytestmark = pytest.mark.django_db

# --- Authentication and scoping -------------------------------------------------------------------


@pytest.mark.parametrize("workspace", ["abc", "0", "-3"])
def test_source_list_names_a_bad_filter(api, owner, source_a, workspace):
    response = api(owner).get(f"{API}/sources/", {"workspace": workspace})
    assert response.status_code == 400
    assert list(error_of(response)["details"]) == ["workspace"]


def test_lists_show_only_the_callers_workspaces(api, owner, source_a, source_b):
    crawl_a, crawl_b = start_crawl(source_a), start_crawl(source_b)
    client = api(owner)
    sources = client.get(f"{API}/sources/").json()["results"]
    assert [s["id"] for s in sources] == [source_a.pk]
    crawls = client.get(f"{API}/crawls/").json()["results"]
    assert [c["id"] for c in crawls] == [crawl_a.pk]
    # Asking for the foreign workspace by filter shows nothing rather than its rows.
    for path in ("sources", "crawls"):
        response = client.get(f"{API}/{path}/", {"workspace": source_b.workspace_id})
        assert response.json()["results"] == []
    assert crawl_b.pk not in [c["id"] for c in client.get(f"{API}/crawls/").json()["results"]]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/sources/{source}/"),
        ("put", "/sources/{source}/"),
        ("patch", "/sources/{source}/"),
        ("delete", "/sources/{source}/"),
        ("post", "/sources/{source}/preview/"),
        ("post", "/sources/{source}/crawl/"),
        ("get", "/crawls/{crawl}/"),
        ("post", "/crawls/{crawl}/cancel/"),
        ("post", "/crawls/{crawl}/retry/"),
        ("get", "/crawls/{crawl}/events/"),
        ("get", "/crawls/{crawl}/frontier/"),
    ],
)
def test_foreign_rows_answer_404_for_retrieve_and_every_action(
    api, owner, source_b, method, path, sent_tasks
):
    crawl = start_crawl(source_b)
    url = API + path.format(source=source_b.pk, crawl=crawl.pk)
    response = getattr(api(owner), method)(url, {"name": "mine now"}, format="json")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"
    source_b.refresh_from_db()
    assert source_b.name == "Busan board"
    assert Crawl.objects.count() == 1
    crawl.refresh_from_db()
    assert crawl.status == Crawl.Status.QUEUED


def test_a_token_sees_only_its_own_workspace(owner, workspace_a, source_a, outsider):
    elsewhere = services.workspace_create(owner=outsider, name="Daegu")
    join(workspace=elsewhere, user=owner, role=Membership.Role.MEMBER)
    other = make_source(elsewhere, "Daegu board")
    start_crawl(source_a)
    start_crawl(other)
    client = bearer(owner, workspace_a)
    assert [s["id"] for s in client.get(f"{API}/sources/").json()["results"]] == [source_a.pk]
    crawls = client.get(f"{API}/crawls/").json()["results"]
    assert {c["source"] for c in crawls} == {source_a.pk}
    assert client.get(f"{API}/sources/{other.pk}/").status_code == 404
    # The same user without the token sees both workspaces.
    session = APIClient()
    session.force_authenticate(owner)
    ids = {s["id"] for s in session.get(f"{API}/sources/").json()["results"]}
    assert ids == {source_a.pk, other.pk}


# --- Starting crawls --------------------------------------------------------------------------


def test_create_a_crawl_answers_202_with_where_to_follow_it(
    api, teammate, source_a, sent_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(teammate).post(f"{API}/crawls/", {"source": source_a.pk}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    crawl = Crawl.objects.get(pk=body["id"])
    assert response["Location"] == f"http://testserver{API}/crawls/{crawl.pk}/"
    assert body["websocket_url"] == f"ws://testserver/ws/crawls/{crawl.pk}/"
    assert body["stream_url"] == f"http://testserver{API}/crawls/{crawl.pk}/events/stream"
    assert (body["status"], body["is_active"], body["source"], body["source_name"]) == (
        "queued",
        True,
        source_a.pk,
        "Seoul board",
    )
    assert (body["pages_total"], body["created_by"]) == (1, teammate.pk)
    queued = CrawlEvent.objects.get(crawl=crawl)
    assert (queued.sequence, queued.type) == (1, events.QUEUED)
    assert queued.payload == {
        "source": source_a.pk,
        "trigger": "api",
        "start_urls": 1,
        "pages_total": 1,
    }
    assert sent_tasks == [("crawls.run", [crawl.pk])]  # sent once the transaction committed


def test_the_stream_urls_follow_the_request(api, owner, source_a, sent_tasks):
    response = api(owner).post(
        f"{API}/crawls/",
        {"source": source_a.pk},
        format="json",
        secure=True,
        HTTP_HOST="localhost",
    )
    body = response.json()
    assert body["websocket_url"] == f"wss://localhost/ws/crawls/{body['id']}/"
    assert body["stream_url"].startswith("https://localhost/api/v1/crawls/")


def test_sources_crawl_action_starts_a_crawl(api, owner, source_a, sent_tasks):
    response = api(owner).post(f"{API}/sources/{source_a.pk}/crawl/")
    assert response.status_code == 202
    crawl = Crawl.objects.get()
    assert (response.json()["id"], crawl.source, crawl.created_by) == (crawl.pk, source_a, owner)


def test_crawl_create_names_a_bad_source(api, owner, source_b):
    client = api(owner)
    absent = absent_pk(Source)
    for body, message in [
        ({"source": source_b.pk}, f"no source {source_b.pk} among yours"),
        ({"source": absent}, f"no source {absent} among yours"),
        ({}, "This field is required."),
    ]:
        response = client.post(f"{API}/crawls/", body, format="json")
        assert response.status_code == 400
        assert error_of(response)["details"] == {"source": [message]}
    assert not Crawl.objects.exists()


def test_viewers_cannot_start_crawls(api, viewer, source_a):
    client = api(viewer)
    assert client.post(f"{API}/crawls/", {"source": source_a.pk}, format="json").status_code == 403
    assert client.post(f"{API}/sources/{source_a.pk}/crawl/").status_code == 403
    assert not Crawl.objects.exists()


def test_a_second_crawl_of_a_skip_source_is_a_conflict(api, owner, source_a, sent_tasks):
    active = start_crawl(source_a)
    client = api(owner)
    for response in (
        client.post(f"{API}/crawls/", {"source": source_a.pk}, format="json"),
        client.post(f"{API}/sources/{source_a.pk}/crawl/"),
    ):
        assert response.status_code == 409
        error = error_of(response)
        assert error["code"] == "conflict"
        assert error["details"] == {"active_crawl": active.pk}
        assert str(active.pk) in error["message"]
    assert Crawl.objects.count() == 1


def test_too_many_active_crawls_answer_429_and_queue_nothing(
    api, owner, workspace_a, settings, sent_tasks, django_capture_on_commit_callbacks
):
    settings.CRAWL_MAX_ACTIVE_PER_WORKSPACE = 1
    first, second = make_source(workspace_a, "One"), make_source(workspace_a, "Two")
    client = api(owner)
    with django_capture_on_commit_callbacks(execute=True):
        ok = client.post(f"{API}/crawls/", {"source": first.pk}, format="json")
    assert ok.status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        busy = client.post(f"{API}/crawls/", {"source": second.pk}, format="json")
    assert busy.status_code == 429
    assert busy["Retry-After"] == str(services.Backpressure.retry_after)
    error = error_of(busy)
    assert error["code"] == "backpressure"
    assert "1 crawls queued or running" in error["message"]
    assert list(Crawl.objects.values_list("source", flat=True)) == [first.pk]
    assert sent_tasks == [("crawls.run", [ok.json()["id"]])]


def test_starting_crawls_has_its_own_stricter_rate(api, owner, workspace_a, monkeypatch):
    # DRF reads THROTTLE_RATES once, when throttling.py is imported: set the class's rate.
    monkeypatch.setattr(CrawlCreateThrottle, "rate", "2/min", raising=False)
    sources = [make_source(workspace_a, f"Board {n}") for n in range(3)]
    client = api(owner)
    assert client.post(f"{API}/crawls/", {"source": sources[0].pk}).status_code == 202
    assert client.post(f"{API}/sources/{sources[1].pk}/crawl/").status_code == 202
    for response in (
        client.post(f"{API}/crawls/", {"source": sources[2].pk}),
        client.post(f"{API}/sources/{sources[2].pk}/crawl/"),
    ):
        assert response.status_code == 429
        assert 0 < int(response["Retry-After"]) <= 60
        assert error_of(response)["code"] == "throttled"
    assert Crawl.objects.count() == 2
    # Reading is not starting: other requests keep the ordinary rate.
    assert client.get(f"{API}/crawls/").status_code == 200
    assert client.get(f"{API}/sources/").status_code == 200


# --- Crawls: list, retrieve -------------------------------------------------------------------


def test_crawl_list_filters(api, owner, workspace_a, source_a):
    other = make_source(workspace_a, "Other", overlap_policy=Source.OverlapPolicy.QUEUE)
    done = finish_crawl(start_crawl(source_a))
    failed = finish_crawl(start_crawl(other), Crawl.Status.FAILED)
    queued = start_crawl(other)
    client = api(owner)

    def ids(**params) -> list[int]:
        response = client.get(f"{API}/crawls/", params)
        assert response.status_code == 200, response.json()
        return [c["id"] for c in response.json()["results"]]

    assert ids() == [queued.pk, failed.pk, done.pk]  # newest first
    assert ids(source=other.pk) == [queued.pk, failed.pk]
    assert ids(status="succeeded") == [done.pk]
    assert ids(status="succeeded,failed") == [failed.pk, done.pk]
    assert ids(status=["queued", "failed"]) == [queued.pk, failed.pk]  # ?status=…&status=…
    assert ids(workspace=workspace_a.pk, source=source_a.pk) == [done.pk]
    for params, field in [
        ({"status": "finished"}, "status"),
        ({"source": "abc"}, "source"),
        ({"workspace": "-1"}, "workspace"),
    ]:
        response = client.get(f"{API}/crawls/", params)
        assert response.status_code == 400
        assert field in error_of(response)["details"]


def test_crawl_list_pages_with_cursors(api, owner, workspace_a, source_a):
    Crawl.objects.bulk_create(
        Crawl(workspace=workspace_a, source=source_a, status="succeeded") for _ in range(7)
    )
    client = api(owner)
    seen, url = [], f"{API}/crawls/?page_size=3"
    while url:
        page = client.get(url).json()
        seen += [c["id"] for c in page["results"]]
        url = page["next"]
    assert seen == sorted(Crawl.objects.values_list("id", flat=True), reverse=True)
    assert client.get(f"{API}/crawls/?cursor=forged").status_code == 400


def test_retrieve_a_crawl(api, viewer, source_a):
    crawl = start_crawl(source_a)
    client = api(viewer)
    response = client.get(f"{API}/crawls/{crawl.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["source_name"]) == (crawl.pk, "queued", "Seoul board")
    assert body["websocket_url"].endswith(f"/ws/crawls/{crawl.pk}/")
    cached = client.get(f"{API}/crawls/{crawl.pk}/", HTTP_IF_NONE_MATCH=response["ETag"])
    assert cached.status_code == 304
    finish_crawl(crawl)
    changed = client.get(f"{API}/crawls/{crawl.pk}/", HTTP_IF_NONE_MATCH=response["ETag"])
    assert (changed.status_code, changed.json()["status"]) == (200, "succeeded")


# --- Crawls: cancel, retry --------------------------------------------------------------------


def test_cancel_a_queued_crawl_at_once(api, teammate, source_a):
    crawl = start_crawl(source_a)
    client = api(teammate)
    response = client.post(f"{API}/crawls/{crawl.pk}/cancel/")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["is_active"]) == ("cancelled", False)
    assert client.post(f"{API}/crawls/{crawl.pk}/cancel/").status_code == 200  # idempotent
    types = list(CrawlEvent.objects.filter(crawl=crawl).values_list("type", flat=True))
    assert types == [events.QUEUED, events.CANCELLED]


def test_cancel_a_running_crawl_between_batches(api, owner, source_a):
    crawl = finish_crawl(start_crawl(source_a), Crawl.Status.RUNNING)
    response = api(owner).post(f"{API}/crawls/{crawl.pk}/cancel/")
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["cancel_requested"]) == ("running", True)
    assert CrawlEvent.objects.filter(crawl=crawl, type=events.CANCEL_REQUESTED).count() == 1


def test_a_finished_crawl_cannot_be_cancelled(api, owner, source_a):
    crawl = finish_crawl(start_crawl(source_a))
    response = api(owner).post(f"{API}/crawls/{crawl.pk}/cancel/")
    assert response.status_code == 409
    assert "already succeeded" in error_of(response)["message"]


def test_retry_starts_a_new_crawl_of_a_finished_ones_source(api, owner, source_a, sent_tasks):
    crawl = start_crawl(source_a)
    client = api(owner)
    response = client.post(f"{API}/crawls/{crawl.pk}/retry/")
    assert response.status_code == 409  # still active
    assert error_of(response)["details"] == {"active_crawl": crawl.pk}
    finish_crawl(crawl, Crawl.Status.FAILED)
    response = client.post(f"{API}/crawls/{crawl.pk}/retry/")
    assert response.status_code == 202
    again = Crawl.objects.get(pk=response.json()["id"])
    assert (again.source, again.status, again.created_by) == (source_a, "queued", owner)
    assert CrawlEvent.objects.get(crawl=again, type=events.QUEUED).payload["trigger"] == "retry"


def test_retry_meets_backpressure(api, owner, workspace_a, source_a, settings):
    settings.CRAWL_MAX_ACTIVE_PER_WORKSPACE = 1
    crawl = finish_crawl(start_crawl(source_a), Crawl.Status.FAILED)
    start_crawl(make_source(workspace_a, "Busy"))
    response = api(owner).post(f"{API}/crawls/{crawl.pk}/retry/")
    assert response.status_code == 429
    assert response["Retry-After"] == "30"


def test_viewers_cannot_cancel_or_retry(api, viewer, source_a):
    crawl = start_crawl(source_a)
    client = api(viewer)
    for action in ("cancel", "retry"):
        response = client.post(f"{API}/crawls/{crawl.pk}/{action}/")
        assert response.status_code == 403
        assert error_of(response)["code"] == "permission_denied"
    crawl.refresh_from_db()
    assert crawl.status == Crawl.Status.QUEUED
    assert Crawl.objects.count() == 1


# --- Crawls: the event log and the frontier ----------------------------------------------------


def append_events(crawl, n: int) -> None:
    for i in range(n):
        events.event_append(
            crawl_id=crawl.pk,
            workspace_id=crawl.workspace_id,
            type=events.PROGRESS,
            payload={"pages_done": i},
        )


def test_events_are_read_in_order_and_resumed_after_a_sequence(api, viewer, source_a):
    crawl = start_crawl(source_a)
    append_events(crawl, 11)  # sequences 2 to 12
    client = api(viewer)
    seen, url = [], f"{API}/crawls/{crawl.pk}/events/?page_size=5"
    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += response.json()["results"]
        url = response.json()["next"]
    assert [e["seq"] for e in seen] == list(range(1, 13))
    first = CrawlEvent.objects.get(crawl=crawl, sequence=1)
    assert seen[0] == events.event_message(first)  # the wire form of WebSocket and SSE
    assert seen[0]["event"] == events.QUEUED
    assert seen[-1]["payload"] == {"pages_done": 10}

    after = client.get(f"{API}/crawls/{crawl.pk}/events/", {"after": 9}).json()
    assert [e["seq"] for e in after["results"]] == [10, 11, 12]
    assert after["next"] is None
    assert client.get(f"{API}/crawls/{crawl.pk}/events/", {"after": 12}).json()["results"] == []
    page = client.get(f"{API}/crawls/{crawl.pk}/events/", {"after": 0, "page_size": 2}).json()
    assert [e["seq"] for e in page["results"]] == [1, 2]
    assert "after=0" in page["next"]


@pytest.mark.parametrize("after", ["-1", "abc", "1.5", ""])
def test_events_after_must_be_a_non_negative_integer(api, owner, source_a, after):
    crawl = start_crawl(source_a)
    response = api(owner).get(f"{API}/crawls/{crawl.pk}/events/?after={after}")
    if after == "":  # empty: no filter
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert list(error_of(response)["details"]) == ["after"]


def test_a_cursor_from_one_order_is_refused_by_the_other(api, owner, workspace_a, source_a):
    crawl = start_crawl(source_a)
    append_events(crawl, 3)
    Crawl.objects.bulk_create(
        Crawl(workspace=workspace_a, source=source_a, status="failed") for _ in range(3)
    )
    client = api(owner)
    crawls_next = client.get(f"{API}/crawls/?page_size=1").json()["next"]
    crawls_cursor = crawls_next.split("cursor=")[1]
    events_next = client.get(f"{API}/crawls/{crawl.pk}/events/?page_size=1").json()["next"]
    events_cursor = events_next.split("cursor=")[1]
    response = client.get(f"{API}/crawls/{crawl.pk}/frontier/?cursor={crawls_cursor}")
    assert response.status_code == 400  # ("id",) ascending: not the list's descending cursor
    assert list(error_of(response)["details"]) == ["cursor"]
    response = client.get(f"{API}/crawls/?cursor={events_cursor}")
    assert response.status_code == 400


def add_frontier(crawl, rows) -> None:
    FrontierUrl.objects.bulk_create(
        FrontierUrl(
            crawl=crawl,
            workspace_id=crawl.workspace_id,
            url=url,
            url_hash=urls.url_hash(url),
            kind=kind,
            state=state,
            last_status=last_status,
            error=error,
        )
        for url, kind, state, last_status, error in rows
    )


def test_frontier_shows_pages_with_status_codes_and_errors(api, viewer, source_a):
    crawl = start_crawl(source_a)  # seeds START, a queued listing page
    add_frontier(
        crawl,
        [
            ("https://bids.example.org/notices/1", "item", "done", 200, ""),
            ("https://bids.example.org/notices/2", "item", "failed", 404, "HTTP 404"),
            ("https://bids.example.org/private/3", "item", "failed", None, "robots: disallowed"),
            ("https://bids.example.org/notices/page/2", "list", "done", 200, ""),
        ],
    )
    client = api(viewer)
    everything = client.get(f"{API}/crawls/{crawl.pk}/frontier/").json()["results"]
    assert [u["url"] for u in everything][:2] == [START, "https://bids.example.org/notices/1"]
    assert set(everything[0]) == {
        "id", "url", "kind", "state", "depth", "attempts", "last_status", "error", "fetched_at"
    }  # fmt: skip
    failed = client.get(f"{API}/crawls/{crawl.pk}/frontier/", {"state": "failed"}).json()
    assert [(u["last_status"], u["error"]) for u in failed["results"]] == [
        (404, "HTTP 404"),
        (None, "robots: disallowed"),
    ]
    lists = client.get(f"{API}/crawls/{crawl.pk}/frontier/?kind=list&state=queued,done").json()
    assert [u["url"] for u in lists["results"]] == [
        START,
        "https://bids.example.org/notices/page/2",
    ]
    paged, url = [], f"{API}/crawls/{crawl.pk}/frontier/?page_size=2"
    while url:
        page = client.get(url).json()
        paged += page["results"]
        url = page["next"]
    assert paged == everything
    for params in ({"state": "gone"}, {"kind": "page"}):
        response = client.get(f"{API}/crawls/{crawl.pk}/frontier/", params)
        assert response.status_code == 400
        assert list(error_of(response)["details"]) == list(params)


# --- Query counts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/sources/", "/crawls/", "/crawls/{crawl}/events/", "/crawls/{crawl}/frontier/"],
)
def test_list_query_count_does_not_grow_with_the_page(
    api, owner, workspace_a, source_a, path, django_assert_max_num_queries
):
    crawl = start_crawl(source_a)
    Source.objects.bulk_create(
        Source(workspace=workspace_a, name=f"Bulk {n}", start_urls=[START], rules=DEMO_RULES)
        for n in range(110)
    )
    Crawl.objects.bulk_create(
        Crawl(workspace=workspace_a, source=source_a, status="failed") for _ in range(110)
    )
    append_events(crawl, 110)
    add_frontier(crawl, [(f"{START}/{n}", "item", "done", 200, "") for n in range(110)])
    client = api(owner)
    url = API + path.format(crawl=crawl.pk)
    counts = []
    for size in (5, 100):
        # the crawl and the caller's role for nested lists, then one query for the page
        with django_assert_max_num_queries(3) as captured:
            response = client.get(url, {"page_size": size})
        assert len(response.json()["results"]) == size
        counts.append(len(captured))
    assert counts[0] == counts[1]


# --- End to end ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_crawl_started_through_the_api_runs_and_can_be_read_back(
    celery_worker, demo_source, board, owner, workspace_a
):
    client = bearer(owner, workspace_a)
    response = client.post(f"{API}/crawls/", {"source": demo_source.pk}, format="json")
    assert response.status_code == 202
    crawl_url = f"{API}/crawls/{response.json()['id']}/"
    deadline = time.monotonic() + 120
    while (body := client.get(crawl_url).json())["is_active"]:
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    assert body["status"] == "succeeded", body["error"]
    expected = expected_bids(board.config, base_url=board.base_url)
    assert body["items_new"] == len(expected) == Bid.objects.filter(source=demo_source).count()

    log, url = [], f"{crawl_url}events/?page_size=7"
    while url:
        page = client.get(url).json()
        log += page["results"]
        url = page["next"]
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    assert (log[0]["event"], log[1]["event"], log[-1]["event"]) == (
        events.QUEUED,
        events.STARTED,
        events.SUCCEEDED,
    )
    tail = client.get(f"{crawl_url}events/", {"after": len(log) - 1}).json()["results"]
    assert [e["event"] for e in tail] == [events.SUCCEEDED]

    listings = client.get(f"{crawl_url}frontier/", {"kind": "list", "page_size": 200}).json()
    assert len(listings["results"]) == board.config.listing_pages
    assert {u["last_status"] for u in listings["results"]} == {200}
    failed = client.get(f"{crawl_url}frontier/", {"state": "failed", "page_size": 200}).json()
    private = [u for u in failed["results"] if "/private/" in u["url"]]
    assert [u["error"] for u in private] == ["robots: disallowed by robots.txt"]
    assert any(u["last_status"] == 404 for u in failed["results"])
