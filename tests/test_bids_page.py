"""The bids page's filter form (short labels, a search box, "More filters"), its figures
(thousands separators) and its times (the workspace's zone), through Django's test client."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse

from crawls.filters import BidFilter
from crawls.models import Bid
from crawls.templatetags.figures import amount, count
from tests.clients import signed_in
from tests.factories import NOW, make_source, new_bid

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return unescape(response.content.decode())


def bid_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [int(i) for i in re.findall(r'data-bid="(\d+)"', response.content.decode())]


def row_of(response, bid: Bid) -> str:
    match = re.search(rf'<tr data-bid="{bid.pk}">(.*?)</tr>', text(response), re.S)
    assert match, f"no row of bid {bid.pk}"
    return match.group(1)


@pytest.fixture
def page(client, owner, workspace_a):
    client.force_login(owner)
    return client


@pytest.fixture
def seoul(workspace_a):
    return make_source(workspace_a, schedule_timezone="Asia/Seoul")


def test_the_filter_form_has_short_labels_and_hides_the_rare_filters(page, seoul):
    response = page.get(reverse("crawls:bids"))
    html = text(response)
    assert "[invalid name]" not in html
    assert "is greater than" not in html
    assert "is less than" not in html
    labels = re.findall(r'<label for="id_(\w+)">([^<]+)</label>', html)
    assert labels[:7] == [
        ("search", "Search titles"),
        ("source", "Source"),
        ("department", "Department"),
        ("post_date_after", "Posted from"),
        ("post_date_before", "Posted until"),
        ("amount_min", "Amount at least"),
        ("ordering", "Order"),
    ]
    assert 'type="search" name="search"' in html
    more = html[html.index("<details") : html.index("</details>")]
    assert '<details class="more-filters">' in more  # closed: nothing in it is set
    for name in ("amount_max", "views_min", "views_max", "changed_since", "crawl", "state"):
        assert f'id="id_{name}"' in more, name
    assert 'id="id_search"' not in more
    state = more[more.index('<select name="state"') : more.index("</select>", more.index("state"))]
    assert re.findall(r'<option value="(\w*)"[^>]*>([^<]+)<', state) == [
        ("", "New or changed"),
        ("new", "New"),
        ("changed", "Changed"),
    ]


@pytest.mark.parametrize(
    ("query", "status"),
    [({"views_min": "10"}, 200), ({"state": "new"}, 400), ({"views_min": "many"}, 400)],
)
def test_more_filters_open_when_one_of_them_is_set_or_wrong(page, seoul, query, status):
    response = page.get(reverse("crawls:bids"), query)
    assert response.status_code == status
    assert '<details class="more-filters" open>' in text(response)
    assert response.context["filters_more_open"] is True


def test_a_search_box_value_alone_keeps_more_filters_closed(page, seoul):
    response = page.get(reverse("crawls:bids"), {"search": "도로", "amount_min": "5"})
    assert response.status_code == 200
    assert response.context["filters_more_open"] is False


def test_amounts_and_views_print_with_thousands_separators(page, seoul):
    big, odd, bare = Bid.objects.bulk_create(
        [
            new_bid(seoul, amount=Decimal("492686000.00"), views=12345),
            new_bid(seoul, amount=Decimal("1234.5"), views=7),
            new_bid(seoul, amount=None, views=None),
        ]
    )
    response = page.get(reverse("crawls:bids"))
    assert ">492,686,000<" in row_of(response, big)
    assert ">12,345<" in row_of(response, big)
    assert ">1,234.50<" in row_of(response, odd)
    assert "None" not in row_of(response, bare)
    assert "492686000" not in text(response)


def test_figures_filters():
    assert amount(Decimal("492686000.00")) == "492,686,000"
    assert amount(Decimal("-1000.25")) == "-1,000.25"
    assert amount(None) == ""
    assert amount("n/a") == "n/a"
    assert count(1234567) == "1,234,567"
    assert count(None) == ""


def test_times_are_in_the_zone_the_workspace_sources_share(page, seoul, workspace_a):
    make_source(workspace_a, "Incheon board", schedule_timezone="Asia/Seoul")
    bid = Bid.objects.bulk_create([new_bid(seoul, deadline=NOW)])[0]  # 09:30 UTC
    response = page.get(reverse("crawls:bids"))
    assert response.context["zone"] == "Asia/Seoul"
    assert ">2026-03-02 18:30</time>" in row_of(response, bid)
    assert 'Deadline <span class="zone">(Asia/Seoul)</span>' in text(response)


def test_times_fall_back_to_the_server_zone_when_sources_disagree(
    page, seoul, workspace_a, settings
):
    make_source(workspace_a, "Paris board", schedule_timezone="Europe/Paris")
    bid = Bid.objects.bulk_create([new_bid(seoul, deadline=NOW)])[0]
    response = page.get(reverse("crawls:bids"))
    assert response.context["zone"] == settings.TIME_ZONE == "UTC"
    assert ">2026-03-02 09:30</time>" in row_of(response, bid)


def test_changed_since_reads_in_the_page_zone_and_the_api_is_unchanged(
    page, seoul, owner, workspace_a
):
    before, after = Bid.objects.bulk_create(
        [
            new_bid(seoul, changed_at=NOW - dt.timedelta(hours=1)),  # 08:30 UTC = 17:30 KST
            new_bid(seoul, changed_at=NOW),  # 09:30 UTC = 18:30 KST
        ]
    )
    since = "2026-03-02T18:00"  # what a datetime-local input sends: no offset
    assert bid_ids(page.get(reverse("crawls:bids"), {"changed_since": since})) == [after.pk]
    # The API reads the same value in the server's zone (UTC): neither bid is that recent.
    api = signed_in(owner).get(
        "/api/v1/bids/", {"changed_since": since, "workspace": workspace_a.pk}
    )
    assert api.status_code == 200
    assert api.json()["results"] == []
    everything = bid_ids(page.get(reverse("crawls:bids")))
    assert sorted(everything) == sorted([before.pk, after.pk])


def test_the_page_leaves_the_api_filters_as_they_were(page, seoul):
    labels = {name: f.label for name, f in BidFilter().form.fields.items()}
    assert page.get(reverse("crawls:bids"), {"search": "x"}).status_code == 200
    assert {name: f.label for name, f in BidFilter().form.fields.items()} == labels
    assert "workspace" in BidFilter.base_filters
    assert BidFilter.base_filters["amount_min"].label is None  # generated, as the API had it
