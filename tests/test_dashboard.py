"""The dashboard's pages through Django's test client: scoping, roles, starting and stopping
crawls, the sources editor and preview, the bids table's filters and cursors, query budgets."""

from __future__ import annotations

import datetime as dt
import json
import re
from html import unescape

import pytest
from django.urls import reverse

from crawls import events, services
from crawls.demo.board import DEMO_RULES, expected_bids
from crawls.engine import kinds
from crawls.models import Bid, Crawl, Source
from crawls.source_examples import RULES_EXAMPLES
from tests.factories import START, make_source, new_bid

pytestmark = pytest.mark.django_db


def start(source) -> Crawl:
    return services.crawl_start(source=source, workers=0)


def finish(crawl, status=Crawl.Status.SUCCEEDED) -> Crawl:
    Crawl.objects.filter(pk=crawl.pk).update(status=status)
    crawl.refresh_from_db()
    return crawl


def text(response) -> str:
    return unescape(response.content.decode())


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def login(client):
    def as_user(user):
        client.force_login(user)
        return client

    return as_user


# --- Pages, scoping and roles ------------------------------------------------------------------


def test_pages_render_for_members(login, teammate, source_a, sent_tasks):
    crawl = start(source_a)
    Bid.objects.bulk_create([new_bid(source_a, title="도로 보수공사", first_crawl=crawl)])
    client = login(teammate)
    pages = {
        reverse("crawls:overview"): ["Seoul tenders", "Start crawl", f"Crawl {crawl.pk}"],
        reverse("crawls:crawl", args=[crawl.pk]): ["Cancel crawl", "도로 보수공사", "crawl.queued"],
        reverse("crawls:crawl_items", args=[crawl.pk]): ["도로 보수공사"],
        reverse("crawls:sources"): ["Seoul board", "New source"],
        reverse("crawls:source_create"): ["New source", "Preview"],
        reverse("crawls:source_edit", args=[source_a.pk]): ["Seoul board", '"items"'],
        reverse("crawls:bids"): ["도로 보수공사", "Export these bids"],
    }
    for url, expected in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        for snippet in expected:
            assert snippet in text(response), (url, snippet)


def test_the_home_url_is_the_overview_and_pages_need_a_login(client, login, owner, workspace_a):
    assert reverse("home") == reverse("crawls:overview") == "/"
    response = client.get(reverse("crawls:bids"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "Seoul tenders" in text(login(owner).get("/"))


def test_a_user_without_workspace_is_told_so(login, outsider):
    response = login(outsider).get("/")
    assert "not a member of any workspace" in text(response)
    assert login(outsider).get(reverse("crawls:bids")).status_code == 404


def test_foreign_crawls_and_sources_answer_404(login, owner, source_a, source_b, sent_tasks):
    crawl = start(source_b)
    client = login(owner)
    for name, pk in [
        ("crawls:crawl", crawl.pk),
        ("crawls:crawl_items", crawl.pk),
        ("crawls:source_edit", source_b.pk),
    ]:
        assert client.get(reverse(name, args=[pk])).status_code == 404, name
    for name, pk in [
        ("crawls:crawl_cancel", crawl.pk),
        ("crawls:crawl_retry", crawl.pk),
        ("crawls:crawl_start", source_b.pk),
        ("crawls:source_edit", source_b.pk),
    ]:
        assert client.post(reverse(name, args=[pk]), {"name": "mine"}).status_code == 404, name
    crawl.refresh_from_db()
    assert crawl.status == Crawl.Status.QUEUED
    assert Crawl.objects.count() == 1
    assert Source.objects.get(pk=source_b.pk).name == "Busan board"


def test_viewers_see_no_buttons_and_cannot_post(login, viewer, source_a, sent_tasks):
    crawl = start(source_a)
    client = login(viewer)
    for url in ["/", reverse("crawls:crawl", args=[crawl.pk]), reverse("crawls:sources")]:
        page = text(client.get(url))
        for button in ("Start crawl", "Cancel crawl", "Retry", "New source"):
            assert button not in page, (url, button)
    edit = text(client.get(reverse("crawls:source_edit", args=[source_a.pk])))
    assert "<fieldset disabled>" in edit
    assert "Save</button>" not in edit
    refused = [
        reverse("crawls:crawl_start", args=[source_a.pk]),
        reverse("crawls:crawl_cancel", args=[crawl.pk]),
        reverse("crawls:crawl_retry", args=[crawl.pk]),
        reverse("crawls:source_edit", args=[source_a.pk]),
        reverse("crawls:source_create"),
    ]
    for url in refused:
        assert client.post(url, {"name": "viewer was here"}).status_code == 403, url
    crawl.refresh_from_db()
    assert (crawl.status, Crawl.objects.count()) == (Crawl.Status.QUEUED, 1)
    assert list(Source.objects.values_list("name", flat=True)) == ["Seoul board"]
    assert sent_tasks == []


def test_the_workspace_switcher_is_remembered_in_the_session(login, owner, workspace_a):
    second = services.workspace_create(owner=owner, name="Apple orchard")  # first by name
    make_source(second, "Orchard board")
    client = login(owner)
    assert "<h1>Apple orchard</h1>" in text(client.get("/"))
    response = client.post(
        reverse("crawls:workspace_switch"),
        {"workspace": workspace_a.pk, "next": reverse("crawls:sources")},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("crawls:sources")
    page = text(client.get(reverse("crawls:sources")))
    assert "Sources of Seoul tenders" in page
    assert "Orchard board" not in page


def test_the_switcher_refuses_foreign_workspaces_and_foreign_redirects(
    login, owner, workspace_a, workspace_b
):
    client = login(owner)
    assert (
        client.post(reverse("crawls:workspace_switch"), {"workspace": workspace_b.pk}).status_code
        == 404
    )
    response = client.post(
        reverse("crawls:workspace_switch"),
        {"workspace": workspace_a.pk, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/"


# --- Starting, cancelling, retrying -------------------------------------------------------------


def test_start_crawl_queues_a_crawl_and_opens_its_page(
    login, teammate, source_a, sent_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(teammate).post(reverse("crawls:crawl_start", args=[source_a.pk]))
    crawl = Crawl.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("crawls:crawl", args=[crawl.pk])
    assert (crawl.source, crawl.created_by, crawl.status) == (source_a, teammate, "queued")
    assert sent_tasks == [("crawls.run", [crawl.pk])]
    page = login(teammate).get(response["Location"])
    assert f"Crawl {crawl.pk} of Seoul board queued." in messages_of(page)
    assert f'data-live-crawl data-crawl="{crawl.pk}"' in text(page)


def test_start_crawl_shows_conflict_and_backpressure(
    login, owner, workspace_a, settings, sent_tasks
):
    settings.CRAWL_MAX_ACTIVE_PER_WORKSPACE = 1
    first, second = make_source(workspace_a, "First"), make_source(workspace_a, "Second")
    active = start(first)
    client = login(owner)
    conflict = client.post(reverse("crawls:crawl_start", args=[first.pk]), follow=True)
    assert conflict.redirect_chain[-1][0] == "/"
    assert messages_of(conflict) == [
        f"Not started: crawl {active.pk} of this source is still queued."
    ]
    busy = client.post(reverse("crawls:crawl_start", args=[second.pk]), follow=True)
    [message] = messages_of(busy)
    assert message.startswith("Not started: this workspace has 1 crawls queued or running")
    assert Crawl.objects.count() == 1


def test_cancel_and_retry(login, owner, source_a, sent_tasks):
    crawl = start(source_a)
    client = login(owner)
    response = client.post(reverse("crawls:crawl_cancel", args=[crawl.pk]), follow=True)
    crawl.refresh_from_db()
    assert crawl.status == Crawl.Status.CANCELLED
    assert messages_of(response) == [f"Crawl {crawl.pk} cancelled."]
    page = text(response)
    assert re.search(r'action="[^"]*/cancel/" data-when="active" hidden', page)
    response = client.post(reverse("crawls:crawl_retry", args=[crawl.pk]), follow=True)
    retried = Crawl.objects.exclude(pk=crawl.pk).get()
    assert response.redirect_chain == [(reverse("crawls:crawl", args=[retried.pk]), 302)]
    assert messages_of(response) == [f"Crawl {retried.pk} of Seoul board queued."]
    again = client.post(reverse("crawls:crawl_retry", args=[retried.pk]), follow=True)
    assert messages_of(again) == [
        f"Not started: crawl {retried.pk} of this source is still queued."
    ]
    assert Crawl.objects.count() == 2


def test_the_crawl_page_shows_page_errors_and_the_latest_events(login, owner, source_a, sent_tasks):
    crawl = start(source_a)
    for n in range(205):
        events.event_append(
            crawl_id=crawl.pk, workspace_id=crawl.workspace_id, type=events.PAGE_ERROR,
            payload={"url": f"{START}/x/{n}", "class": "http", "error": "HTTP 500", "status": 500},
        )  # fmt: skip
    page = text(login(owner).get(reverse("crawls:crawl", args=[crawl.pk])))
    assert f"{START}/x/204</code> — http (500): HTTP 500" in page
    assert "crawl.queued" not in page  # seq 1 is older than the latest 200
    assert page.count('<li value="') == 200
    assert 'data-after="206"' in page


# --- Sources -------------------------------------------------------------------------------------


def source_post(**values) -> dict:
    data = {
        "name": "Gangnam board",
        "start_urls": START,
        "max_depth": 10,
        "max_pages": 100,
        "concurrency_per_host": 4,
        "delay_seconds": 0,
        "obey_robots": "on",
        "schedule_timezone": "UTC",
        "overlap_policy": "skip",
        "rules": json.dumps(DEMO_RULES),
    }
    data.update(values)
    return data


def test_source_create_with_bad_rules_names_the_path_and_keeps_the_input(login, owner, workspace_a):
    bad_rules = '{"items": [1], "fields": {"title": "h1"}}'
    response = login(owner).post(reverse("crawls:source_create"), source_post(rules=bad_rules))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == ["rules"]
    assert errors["rules"][0].startswith("items[0]: ")
    page = text(response)
    assert '<ul class="errors" id="id_rules_errors" role="alert">' in page
    assert bad_rules in page  # what was typed is still there
    assert 'value="Gangnam board"' in page
    assert not Source.objects.exists()


def test_source_create_with_invalid_json_keeps_the_text(login, owner, workspace_a):
    response = login(owner).post(reverse("crawls:source_create"), source_post(rules='{"items": '))
    assert response.status_code == 400
    assert response.context["form"].errors["rules"][0].startswith("not valid JSON")
    assert '{"items": </textarea>' in text(response)


def test_source_create_and_edit(login, owner, workspace_a):
    client = login(owner)
    response = client.post(reverse("crawls:source_create"), source_post())
    source = Source.objects.get()
    assert response["Location"] == reverse("crawls:source_edit", args=[source.pk])
    assert (source.workspace, source.start_urls, source.rules) == (workspace_a, [START], DEMO_RULES)
    edit = source_post(name="Gangnam notices", start_urls=f"{START}\n{START}?page=2", max_pages=7)
    client.post(reverse("crawls:source_edit", args=[source.pk]), edit)
    source.refresh_from_db()
    assert (source.name, source.max_pages) == ("Gangnam notices", 7)
    assert source.start_urls == [START, f"{START}?page=2"]
    response = client.post(
        reverse("crawls:source_edit", args=[source.pk]),
        source_post(start_urls="http://10.0.0.1/admin", schedule_cron="every day"),
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"start_urls", "schedule_cron"}
    assert errors["start_urls"][0].startswith("[0] http://10.0.0.1/admin: ")
    source.refresh_from_db()
    assert source.name == "Gangnam notices"


@pytest.mark.django_db(transaction=True)
def test_preview_renders_what_the_rules_extract_from_the_demo_board(
    login, owner, workspace_a, board
):
    url, expected = next(iter(expected_bids(board.config, base_url=board.base_url).items()))
    data = source_post(start_urls=f"{board.base_url}/notices", preview_url=url, preview="1")
    response = login(owner).post(reverse("crawls:source_create"), data)
    assert response.status_code == 200
    preview = response.context["preview"]
    assert preview["fields"]["title"] == expected["title"]
    page = text(response)
    assert f"<dt>title</dt><dd>{expected['title']}</dd>" in page
    assert f"<dt>views</dt><dd>{expected['views']}</dd>" in page
    assert not Source.objects.exists()  # a preview saves nothing
    refused = login(owner).post(
        reverse("crawls:source_create"), {**data, "preview_url": "http://10.1.2.3/admin"}
    )
    assert refused.status_code == 400
    assert refused.context["form"].errors["preview_url"][0].startswith("refused: ")


RULES_WITH_SECRET = {**DEMO_RULES, "items": ['a[data-key="{secret.service_key}"]']}
SECRET = "dashboard-secret-55"


def test_the_new_source_form_offers_kinds_with_an_example_and_secret_rows(
    login, owner, workspace_a
):
    response = login(owner).get(reverse("crawls:source_create"))
    form = response.context["form"]
    assert [value for value, _ in form.fields["kind"].choices] == ["html", "json", "xml", "ocds"]
    assert json.loads(form["rules"].value()) == RULES_EXAMPLES["html"]
    page = text(response)
    assert '<script id="rules-examples" type="application/json">' in page
    assert 'src="/static/crawls/source_kind.' in page
    assert 'name="new_secret_name_1"' in page
    assert 'type="password" name="new_secret_value_1"' in page


def test_every_kinds_example_is_valid_rules(db):
    # Needs the json, xml and ocds rules' parsers (other helpers of issue 12).
    for kind, example in RULES_EXAMPLES.items():
        kinds.rules_parse(kind, example)


def test_source_secrets_on_the_dashboard_are_write_only(login, owner, workspace_a):
    client = login(owner)
    data = source_post(
        rules=json.dumps(RULES_WITH_SECRET), kind="html",
        new_secret_name_1="service_key", new_secret_value_1=SECRET,
        new_secret_name_2="spare", new_secret_value_2="spare-value-66",
    )  # fmt: skip
    response = client.post(reverse("crawls:source_create"), data)
    assert response.status_code == 302, response.context["form"].errors
    source = Source.objects.get()
    assert source.secrets == {"service_key": SECRET, "spare": "spare-value-66"}

    edit = client.get(reverse("crawls:source_edit", args=[source.pk]))
    page = text(edit)
    assert SECRET not in page
    assert "spare-value-66" not in page
    assert 'name="secret__service_key" autocomplete="new-password" placeholder="set"' in page
    # Blank keeps, a new value replaces, the box removes; an error never echoes a value.
    change = source_post(
        rules=json.dumps(RULES_WITH_SECRET), secret__service_key="",
        secret__spare="spare-value-77", new_secret_name_1="Bad-Name", new_secret_value_1=SECRET,
    )  # fmt: skip
    refused = client.post(reverse("crawls:source_edit", args=[source.pk]), change)
    assert refused.status_code == 400
    assert list(refused.context["form"].errors) == ["new_secret_name_1"]
    assert SECRET not in text(refused)
    del change["new_secret_name_1"], change["new_secret_value_1"]
    client.post(reverse("crawls:source_edit", args=[source.pk]), change)
    source.refresh_from_db()
    assert source.secrets == {"service_key": SECRET, "spare": "spare-value-77"}
    change = {**change, "secret__spare": "", "secret_remove__spare": "on"}
    client.post(reverse("crawls:source_edit", args=[source.pk]), change)
    source.refresh_from_db()
    assert source.secrets == {"service_key": SECRET}
    # Removing a secret the rules use is refused, naming it.
    change = {**change, "secret_remove__service_key": "on"}
    refused = client.post(reverse("crawls:source_edit", args=[source.pk]), change)
    assert refused.status_code == 400
    assert "{secret.service_key}" in refused.context["form"].errors["new_secret_name_1"][0]


@pytest.mark.django_db(transaction=True)
def test_preview_on_the_dashboard_hides_secrets_stored_and_typed(login, owner, workspace_a, board):
    url, expected = next(iter(expected_bids(board.config, base_url=board.base_url).items()))
    title = expected["title"]  # a "secret" the page shows: the preview must hide it
    source = make_source(
        workspace_a, start_urls=[f"{board.base_url}/notices"], secrets={"title": title}
    )
    data = source_post(start_urls=f"{board.base_url}/notices", preview_url=url, preview="1")
    response = login(owner).post(reverse("crawls:source_edit", args=[source.pk]), data)
    assert response.status_code == 200, response.context["form"].errors
    assert response.context["preview"]["fields"]["title"] == "{secret.title}"
    assert title not in text(response)


# --- Bids ----------------------------------------------------------------------------------------


@pytest.fixture
def bids(source_a):
    """Seven bids of Seoul board, one of another workspace."""
    rows = [
        new_bid(source_a, title=f"도로 보수공사 {n}", department="Roads" if n % 2 else "Parks",
                views=n * 10, post_date=dt.date(2026, 3, 1 + n), amount=1000 + n)
        for n in range(6)
    ]  # fmt: skip
    rows.append(new_bid(source_a, title="Undated", views=None, post_date=None))
    return Bid.objects.bulk_create(rows)


def bid_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [int(i) for i in re.findall(r'data-bid="(\d+)"', response.content.decode())]


def test_bids_filters_are_the_api_filters(login, owner, bids, source_b):
    Bid.objects.bulk_create([new_bid(source_b, title="도로 elsewhere", department="Roads")])
    client = login(owner)
    by_id = {b.title: b.pk for b in bids}
    url = reverse("crawls:bids")
    roads = client.get(url, {"department": "Roads", "search": "보수"})
    assert bid_ids(roads) == [by_id[f"도로 보수공사 {n}"] for n in (5, 3, 1)]
    ranged = client.get(url, {"views_min": 20, "views_max": 40, "ordering": "-views"})
    assert bid_ids(ranged) == [by_id[f"도로 보수공사 {n}"] for n in (4, 3, 2)]
    dated = client.get(url, {"post_date_after": "2026-03-05", "amount_max": "1005"})
    assert bid_ids(dated) == [by_id[f"도로 보수공사 {n}"] for n in (5, 4)]
    assert len(bid_ids(client.get(url, {"source": bids[0].source_id}))) == 7
    bad = client.get(url, {"views_min": "many"})
    assert bad.status_code == 400
    assert "views_min" in bad.context["filters"].errors


def test_bids_export_links_carry_the_filters(login, owner, workspace_a, bids):
    response = login(owner).get(
        reverse("crawls:bids"), {"department": "Roads", "ordering": "-views"}
    )
    exports = dict(response.context["exports"])
    assert set(exports) == {"csv", "jsonl"}
    for kind, link in exports.items():
        assert link.startswith("/api/v1/bids/export/?")
        for part in (
            "department=Roads",
            "ordering=-views",
            f"workspace={workspace_a.pk}",
            f"type={kind}",
        ):
            assert part in link, (kind, link)
    exported = login(owner).get(exports["jsonl"])
    assert exported.status_code == 200
    lines = b"".join(exported.streaming_content).decode().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(
        b.pk for b in bids if b.department == "Roads"
    )


@pytest.mark.parametrize("ordering", ["-post_date", "-views", "-amount"])
def test_bids_next_and_previous_walk_every_bid_once(login, owner, bids, ordering):
    client = login(owner)
    url = f"{reverse('crawls:bids')}?ordering={ordering}&page_size=2"
    pages, seen = [], []
    while url:
        response = client.get(url)
        pages.append((url, bid_ids(response)))
        seen += pages[-1][1]
        assert (response.context["previous_link"] is None) == (len(pages) == 1)
        url = response.context["next_link"]
    assert len(pages) == 4
    assert sorted(seen) == sorted(b.pk for b in bids)
    assert len(seen) == len(set(seen))
    # Back again with Previous, page by page.
    response = client.get(pages[-1][0])
    for _, expected in reversed(pages[:-1]):
        response = client.get(response.context["previous_link"])
        assert bid_ids(response) == expected
    assert response.context["previous_link"] is None
    assert bid_ids(client.get(client.get(pages[2][0]).context["first_link"])) == pages[0][1]


def test_bids_refuse_a_tampered_cursor(login, owner, bids):
    response = login(owner).get(reverse("crawls:bids"), {"cursor": "forged"})
    assert response.status_code == 400
    assert messages_of(response) == ["invalid or stale cursor: start again without it"]


# --- Query budgets ------------------------------------------------------------------------------


def many_crawls(source, n):
    for _ in range(n):
        finish(start(source))


@pytest.mark.parametrize("rows", [2, 12])
def test_page_query_budgets_do_not_grow_with_rows(
    login, owner, source_a, sent_tasks, rows, django_assert_max_num_queries
):
    many_crawls(source_a, rows)
    crawl = Crawl.objects.order_by("id").first()
    Bid.objects.bulk_create(new_bid(source_a, first_crawl=crawl) for _ in range(rows * 3))
    for n in range(rows):
        make_source(source_a.workspace, f"Board {n}")
    client = login(owner)
    client.get("/")  # the session's first read is not what we count
    # Every page: session, user, the user's memberships with their workspaces (the switcher),
    # then what it shows:
    budgets = {
        "/": 8,  # latest crawls with source names, 3 counts (sources, bids, running), sources
        reverse("crawls:crawl", args=[crawl.pk]): 7,  # crawl + source, log, page errors, items
        reverse("crawls:sources"): 4,  # sources
        reverse("crawls:source_edit", args=[source_a.pk]): 5,  # the source, its quality trend
        reverse("crawls:bids"): 5,  # sources (the filter's choices), one page of bids
        reverse("crawls:bids") + "?department=Roads&search=Notice&page_size=5": 5,
        # the items fragment has no switcher: session, user, crawl + source, items
        reverse("crawls:crawl_items", args=[crawl.pk]): 4,
    }
    for url, budget in budgets.items():
        with django_assert_max_num_queries(budget):
            assert client.get(url).status_code == 200
