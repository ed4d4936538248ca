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


# --- Procurement columns ---------------------------------------------------------------------


def test_the_table_shows_status_badges_and_amounts_with_their_currency(page, seoul):
    road, lights = Bid.objects.bulk_create(
        [
            new_bid(
                seoul,
                amount=Decimal("4477000000"),
                currency="KRW",
                status=Bid.Status.CANCELLED,
                procurement_method="open",
                classifications=["CPV:45232410", "UNSPSC:72141000"],
            ),
            new_bid(seoul, amount=Decimal("1234.5"), currency="", status=Bid.Status.UNKNOWN),
        ]
    )
    response = page.get(reverse("crawls:bids"))
    row = row_of(response, road)
    assert ">4,477,000,000 KRW<" in row
    assert '<span class="badge badge-cancelled" data-status="cancelled">Cancelled</span>' in row
    assert ">open<" in row
    assert "<code>CPV:45232410</code>, <code>UNSPSC:72141000</code>" in row
    assert f'href="{reverse("crawls:bid", args=[road.pk])}"' in row
    assert ">1,234.50<" in row_of(response, lights)  # no currency: the figure alone
    assert 'data-status="unknown"' in row_of(response, lights)


def test_the_procurement_filters_narrow_the_page_and_sit_behind_more_filters(page, seoul):
    road, works, lights = Bid.objects.bulk_create(
        [
            new_bid(seoul, currency="KRW", status="active", classifications=["CPV:45233140"]),
            new_bid(seoul, currency="KRW", status="cancelled", procurement_method="Limited"),
            new_bid(seoul, currency="USD", status="awarded", classifications=["CPV:31520000"]),
        ]
    )
    html = text(page.get(reverse("crawls:bids")))
    more = html[html.index("<details") : html.index("</details>")]
    for name, label in [
        ("status", "Status"),
        ("currency", "Currency"),
        ("procurement_method", "Procurement method"),
        ("classification", "Classification"),
    ]:
        assert f'<label for="id_{name}">{label}</label>' in more, name
    assert re.findall(r'<option value="(\w+)"', more[more.index('name="status"') :])[:5] == [
        "active",
        "cancelled",
        "awarded",
        "closed",
        "unknown",
    ]
    bids = reverse("crawls:bids")
    assert set(bid_ids(page.get(bids, {"status": ["active", "awarded"]}))) == {road.pk, lights.pk}
    assert set(bid_ids(page.get(bids, {"currency": "krw"}))) == {road.pk, works.pk}
    assert bid_ids(page.get(bids, {"procurement_method": "limited"})) == [works.pk]
    assert bid_ids(page.get(bids, {"classification": "CPV:45*"})) == [road.pk]
    response = page.get(bids, {"currency": "KRW", "status": "active"})
    assert response.context["filters_more_open"] is True
    csv_link = dict(response.context["exports"])["csv"]
    assert "currency=KRW" in csv_link
    assert "status=active" in csv_link
    wrong = page.get(bids, {"currency": "XXY"})
    assert wrong.status_code == 400
    assert "Not an ISO 4217 currency code." in text(wrong)


def test_the_bid_detail_page_shows_the_procurement_columns(
    page, client, seoul, outsider, workspace_b
):
    bid = new_bid(
        seoul,
        title="하수관로 정비공사",
        amount=Decimal("4477000000"),
        currency="KRW",
        status=Bid.Status.AWARDED,
        procurement_method="selective",
        classifications=["CPV:45232410"],
    )
    bid.save()
    html = text(page.get(reverse("crawls:bid", args=[bid.pk])))
    assert '<dd data-field="amount">4,477,000,000 KRW</dd>' in html
    assert '<dd data-field="currency">KRW</dd>' in html
    assert '<dd data-field="status">Awarded</dd>' in html
    assert '<dd data-field="procurement_method">selective</dd>' in html
    assert '<dd data-field="classifications"><code>CPV:45232410</code></dd>' in html
    other = new_bid(make_source(workspace_b))
    other.save()
    assert page.get(reverse("crawls:bid", args=[other.pk])).status_code == 404
    client.force_login(outsider)
    assert client.get(reverse("crawls:bid", args=[bid.pk])).status_code == 404


def test_figures_print_an_amounts_currency():
    assert amount(Decimal("4477000000.00"), "KRW") == "4,477,000,000 KRW"
    assert amount(Decimal("1234.5"), "USD") == "1,234.50 USD"
    assert amount(None, "KRW") == ""
    assert amount(Decimal("10"), "") == "10"


def test_the_bid_detail_page_costs_a_fixed_number_of_queries(
    page, seoul, django_assert_max_num_queries
):
    bid = new_bid(seoul, currency="KRW", classifications=[f"CPV:{n}" for n in range(40)])
    bid.save()
    # Session, user, memberships (the workspace switcher), the bid with its source's name, its
    # latest changes.
    with django_assert_max_num_queries(5):
        response = page.get(reverse("crawls:bid", args=[bid.pk]))
    assert response.status_code == 200
    assert text(response).count("<code>CPV:") == 40
