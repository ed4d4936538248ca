"""GET /api/v1/bids/: scoping, filters, search, ordering, keyset pages and retrieve."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework import serializers

from crawls import selectors, services
from crawls.api.serializers_bids import BidSerializer
from crawls.filters import BidFilter
from crawls.models import Bid, BidRevision, Membership
from tests.clients import assert_invalid
from tests.clients import result_ids as ids
from tests.factories import NOW, join, make_bid, make_source, new_bid, succeeded_crawl

pytestmark = pytest.mark.django_db


@pytest.fixture
def source_a(workspace_a):
    return make_source(workspace_a, "City board")


@pytest.fixture
def source_b(workspace_b):
    return make_source(workspace_b, "City board")


# --- Scoping and roles ----------------------------------------------------------------------


def test_list_and_retrieve_are_scoped_to_the_callers_workspaces(
    api, source_a, source_b, teammate, outsider
):
    mine = make_bid(source_a, title="서울 도로 보수공사")
    theirs = make_bid(source_b, title="부산 항만 준설")
    api.force_authenticate(teammate)
    assert ids(api.get("/api/v1/bids/")) == [mine.id]
    assert api.get(f"/api/v1/bids/{mine.id}/").status_code == 200
    assert api.get(f"/api/v1/bids/{theirs.id}/").status_code == 404
    api.force_authenticate(outsider)
    assert ids(api.get("/api/v1/bids/")) == [theirs.id]
    assert api.get(f"/api/v1/bids/{mine.id}/").status_code == 404


def test_a_bearer_token_sees_only_its_workspace(api, owner, workspace_a, workspace_b, source_a):
    join(workspace=workspace_b, user=owner, role=Membership.Role.MEMBER)
    in_a = make_bid(source_a)
    in_b = make_bid(make_source(workspace_b, "City board"))
    _, raw = services.token_create(user=owner, workspace=workspace_a, name="ci")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert ids(api.get("/api/v1/bids/")) == [in_a.id]
    assert api.get(f"/api/v1/bids/{in_b.id}/").status_code == 404
    assert ids(api.get(f"/api/v1/bids/?workspace={workspace_b.id}")) == []
    api.credentials()
    api.force_authenticate(owner)  # the same user without the token sees both workspaces
    assert set(ids(api.get("/api/v1/bids/"))) == {in_a.id, in_b.id}
    assert ids(api.get(f"/api/v1/bids/?workspace={workspace_b.id}")) == [in_b.id]


def test_viewers_read_and_nobody_writes(api, source_a, viewer, owner):
    bid = make_bid(source_a)
    api.force_authenticate(viewer)
    assert ids(api.get("/api/v1/bids/")) == [bid.id]
    assert api.get(f"/api/v1/bids/{bid.id}/").status_code == 200
    api.force_authenticate(owner)
    assert api.post("/api/v1/bids/", {"title": "x"}).status_code == 405
    assert api.patch(f"/api/v1/bids/{bid.id}/", {"title": "x"}).status_code == 405
    assert api.put(f"/api/v1/bids/{bid.id}/", {"title": "x"}).status_code == 405
    assert api.delete(f"/api/v1/bids/{bid.id}/").status_code == 405
    assert Bid.objects.get().title == bid.title


def test_anonymous_callers_get_401(api, source_a):
    make_bid(source_a)
    for path in ("/api/v1/bids/", "/api/v1/bids/export/"):
        response = api.get(path)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"


# --- Representation ------------------------------------------------------------------------


def test_list_rows_are_lean_and_retrieve_adds_the_field_history(api, owner, source_a):
    first, second = succeeded_crawl(source_a), succeeded_crawl(source_a)
    bid = make_bid(
        source_a,
        title="[긴급] 하수관로 정비공사",
        department="서울특별시 도시기반시설본부",
        views=12,
        post_date=dt.date(2026, 3, 1),
        amount=Decimal("1234500000.00"),
        deadline=dt.datetime(2026, 3, 20, 9, 0, tzinfo=dt.UTC),
        reference="R-2026-0001",
        currency="KRW",
        status=Bid.Status.ACTIVE,
        procurement_method="open",
        classifications=["CPV:45232410", "UNSPSC:72141000"],
        extra={"attachment": "https://example.org/a.hwp"},
        first_crawl=first,
        last_crawl=second,
    )
    older = BidRevision.objects.create(
        workspace_id=bid.workspace_id,
        bid=bid,
        crawl=first,
        changes={"views": [3, 7]},
        changed_at=NOW - dt.timedelta(days=1),
    )
    newer = BidRevision.objects.create(
        workspace_id=bid.workspace_id, bid=bid, crawl=second, changes={"views": [7, 12]}
    )
    api.force_authenticate(owner)
    row = api.get("/api/v1/bids/").json()["results"][0]
    assert row == {
        "id": bid.id,
        "workspace": source_a.workspace_id,
        "source": source_a.id,
        "source_name": "City board",
        "url": bid.url,
        "title": "[긴급] 하수관로 정비공사",
        "department": "서울특별시 도시기반시설본부",
        "views": 12,
        "post_date": "2026-03-01",
        "amount": "1234500000.00",
        "currency": "KRW",
        "deadline": "2026-03-20T09:00:00Z",
        "reference": "R-2026-0001",
        "status": "active",
        "procurement_method": "open",
        "classifications": ["CPV:45232410", "UNSPSC:72141000"],
        "extra": {"attachment": "https://example.org/a.hwp"},
        "first_seen_at": "2026-03-02T09:30:00Z",
        "last_seen_at": "2026-03-02T09:30:00Z",
        "changed_at": "2026-03-02T09:30:00Z",
        "first_crawl": first.id,
        "last_crawl": second.id,
        "missed_crawls": 0,
        "removed_at": None,
    }
    detail = api.get(f"/api/v1/bids/{bid.id}/")
    assert detail.json() == {
        **row,
        "revisions": [
            {
                "id": newer.id,
                "changed_at": newer.changed_at.isoformat().replace("+00:00", "Z"),
                "crawl": second.id,
                "changes": {"views": [7, 12]},
            },
            {
                "id": older.id,
                "changed_at": "2026-03-01T09:30:00Z",
                "crawl": first.id,
                "changes": {"views": [3, 7]},
            },
        ],
    }
    again = api.get(f"/api/v1/bids/{bid.id}/", HTTP_IF_NONE_MATCH=detail["ETag"])
    assert again.status_code == 304


@pytest.mark.parametrize("zone", ["UTC", "Asia/Seoul"])
def test_rows_are_written_as_drf_fields_would_write_them(source_a, zone):
    crawl = succeeded_crawl(source_a)
    make_bid(source_a, views=None, amount=None, post_date=None, deadline=None)
    make_bid(
        source_a,
        views=0,
        amount=Decimal("0.5"),
        currency="USD",
        status=Bid.Status.CANCELLED,
        procurement_method="limited",
        classifications=["CPV:45000000"],
        post_date=dt.date(2026, 12, 31),
        deadline=dt.datetime(2026, 3, 20, 9, 0, 30, 123456, tzinfo=dt.UTC),
        extra={"k": [1, "가"], "n": None},
        first_crawl=crawl,
        last_crawl=crawl,
    )

    class FieldByField(BidSerializer):
        to_representation = serializers.ModelSerializer.to_representation

    rows = list(selectors.bid_list())
    with timezone.override(zone):
        assert BidSerializer(rows, many=True).data == FieldByField(rows, many=True).data


# --- Filters -------------------------------------------------------------------------------


def test_filters_narrow_the_list(api, owner, workspace_a, source_a):
    other_source = make_source(workspace_a, name="Port board")
    a = make_bid(
        source_a,
        department="조달청",
        views=5,
        post_date=dt.date(2026, 1, 10),
        amount=Decimal("100.00"),
        changed_at=NOW - dt.timedelta(days=3),
    )
    b = make_bid(
        source_a,
        department="부산광역시 건설본부",
        views=50,
        post_date=dt.date(2026, 2, 10),
        amount=Decimal("5000.50"),
    )
    c = make_bid(
        other_source,
        department="Korea Expressway Corporation",
        views=None,
        post_date=None,
        amount=None,
    )
    api.force_authenticate(owner)

    def found(**params) -> set[int]:
        return set(ids(api.get("/api/v1/bids/", params)))

    assert found(department="조달청") == {a.id}
    assert found(department=["조달청", "부산광역시 건설본부"]) == {a.id, b.id}  # repeated
    assert found(department="조달청, 부산광역시 건설본부") == {a.id, b.id}  # comma list
    assert found(department="") == {a.id, b.id, c.id}
    assert found(post_date_after="2026-02-01") == {b.id}
    assert found(post_date_before="2026-02-01") == {a.id}
    assert found(post_date_after="2026-01-10", post_date_before="2026-02-10") == {a.id, b.id}
    assert found(views_min=5, views_max=49) == {a.id}
    assert found(views_min=6) == {b.id}
    assert found(amount_min="100.01") == {b.id}
    assert found(amount_max="100") == {a.id}
    assert found(source=other_source.id) == {c.id}
    assert found(source=f"{source_a.id},{other_source.id}") == {a.id, b.id, c.id}
    assert found(source=[source_a.id, other_source.id]) == {a.id, b.id, c.id}
    assert found(workspace=workspace_a.id) == {a.id, b.id, c.id}
    since = (NOW - dt.timedelta(days=1)).isoformat()
    assert found(changed_since=since) == {b.id, c.id}
    assert found(changed_since=since.replace("+00:00", "Z")) == {b.id, c.id}
    assert found(changed_since="2026-03-02T18:30:00+09:00") == {b.id, c.id}  # NOW, inclusive
    assert found(changed_since="2026-03-02T18:31:00+09:00") == set()
    assert found(department="조달청", views_min=10) == set()  # filters combine


def test_crawl_and_state_filters(api, owner, source_a):
    first, second = succeeded_crawl(source_a), succeeded_crawl(source_a)
    changed = make_bid(source_a, first_crawl=first, last_crawl=second)
    unchanged = make_bid(source_a, first_crawl=first, last_crawl=second)
    found_later = make_bid(source_a, first_crawl=second, last_crawl=second)
    only_first = make_bid(source_a, first_crawl=first, last_crawl=first)
    make_bid(source_a)  # imported, no crawl
    BidRevision.objects.create(
        workspace_id=changed.workspace_id, bid=changed, crawl=second, changes={"title": ["a", "b"]}
    )
    api.force_authenticate(owner)

    def found(**params) -> set[int]:
        return set(ids(api.get("/api/v1/bids/", params)))

    assert found(crawl=second.id) == {changed.id, unchanged.id, found_later.id}
    assert found(crawl=second.id, state="new") == {found_later.id}
    assert found(crawl=second.id, state="changed") == {changed.id}
    assert found(crawl=first.id) == {changed.id, unchanged.id, only_first.id}
    assert found(crawl=first.id, state="new") == {changed.id, unchanged.id, only_first.id}
    assert found(crawl=first.id, state="changed") == set()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"post_date_after": "2026-13-01"}, "post_date_after"),
        ({"post_date_before": "yesterday"}, "post_date_before"),
        ({"views_min": "abc"}, "views_min"),
        ({"views_max": "-1"}, "views_max"),
        ({"views_min": "99999999999"}, "views_min"),
        ({"amount_min": "a lot"}, "amount_min"),
        ({"amount_max": "NaN"}, "amount_max"),
        ({"amount_max": "1e30"}, "amount_max"),
        ({"source": "1,abc"}, "source"),
        ({"source": ["1", "x"]}, "source"),
        ({"source": ",".join(str(n) for n in range(1, 200))}, "source"),
        ({"department": "a\x00b"}, "department"),
        ({"workspace": "first"}, "workspace"),
        ({"crawl": "0"}, "crawl"),
        ({"changed_since": "last tuesday"}, "changed_since"),
        ({"state": "new"}, "state"),  # state needs crawl
        ({"crawl": "1", "state": "deleted"}, "state"),
        ({"search": "x" * 201}, "search"),
        ({"search": "nul\x00"}, "search"),
        ({"ordering": "title"}, "ordering"),
        ({"ordering": "post_date"}, "ordering"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "201"}, "page_size"),
        ({"page_size": "abc"}, "page_size"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "won"}, "currency"),
        ({"currency": "KRWX"}, "currency"),
        ({"status": "open"}, "status"),
        ({"status": "active,deleted"}, "status"),
        ({"procurement_method": "x" * 101}, "procurement_method"),
        ({"classification": "CPV:4*5"}, "classification"),
        ({"classification": "CP*"}, "classification"),
        ({"classification": "x" * 122}, "classification"),
        ({"classification": "CPV\x00"}, "classification"),
    ],
)
def test_bad_parameters_answer_400_naming_the_parameter(api, owner, source_a, params, field):
    make_bid(source_a)
    api.force_authenticate(owner)
    assert_invalid(api.get("/api/v1/bids/", params), field)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"type": "xml"}, "type"),
        ({"views_min": "many"}, "views_min"),
        ({"ordering": "-title"}, "ordering"),
        ({"state": "changed"}, "state"),
        ({"currency": "ABC"}, "currency"),
        ({"status": "gone"}, "status"),
    ],
)
def test_bad_export_parameters_answer_400_before_streaming(api, owner, source_a, params, field):
    make_bid(source_a)
    api.force_authenticate(owner)
    response = api.get("/api/v1/bids/export/", params, HTTP_ACCEPT="text/csv")
    assert_invalid(response, field)


def test_the_filter_set_takes_plain_data_for_saved_searches(source_a):
    wanted = make_bid(source_a, department="조달청", views=10)
    make_bid(source_a, department="경기도교육청 재무과", views=10)
    saved = {"department": ["조달청,부산광역시 건설본부"], "views_min": "5", "search": "notice"}
    filterset = BidFilter(saved, queryset=Bid.objects.all())
    assert filterset.is_valid(), filterset.errors
    assert list(filterset.qs) == [wanted]
    wanted.status, wanted.currency = Bid.Status.CANCELLED, "KRW"
    wanted.save(update_fields=["status", "currency"])
    for status in ("cancelled", "awarded,cancelled", ["cancelled", "closed"]):
        saved = {"status": status, "currency": "krw", "classification": ""}
        filterset = BidFilter(saved, queryset=Bid.objects.all())
        assert filterset.is_valid(), filterset.errors
        assert list(filterset.qs) == [wanted]
    broken = BidFilter({"views_min": "x", "state": "new"}, queryset=Bid.objects.all())
    assert not broken.is_valid()
    assert set(broken.errors) == {"views_min", "state"}


def test_procurement_filters_narrow_the_list(api, owner, source_a):
    road = make_bid(
        source_a,
        currency="KRW",
        status=Bid.Status.ACTIVE,
        procurement_method="open",
        classifications=["CPV:45233140", "UNSPSC:72141000"],
    )
    works = make_bid(
        source_a,
        currency="KRW",
        status=Bid.Status.CANCELLED,
        procurement_method="Limited",
        classifications=["CPV:45000000"],
    )
    lights = make_bid(
        source_a,
        currency="USD",
        status=Bid.Status.AWARDED,
        procurement_method="open",
        classifications=["CPV:31520000"],
    )
    bare = make_bid(source_a)  # no currency, status unknown, no codes
    api.force_authenticate(owner)

    def found(**params) -> set[int]:
        return set(ids(api.get("/api/v1/bids/", params)))

    assert found(currency="KRW") == {road.id, works.id}
    assert found(currency="usd") == {lights.id}  # any case
    assert found(currency="EUR") == set()
    assert found(status="cancelled") == {works.id}
    assert found(status=["active", "awarded"]) == {road.id, lights.id}  # repeated
    assert found(status="active,cancelled") == {road.id, works.id}  # comma list
    assert found(status="unknown") == {bare.id}
    assert found(procurement_method="OPEN") == {road.id, lights.id}
    assert found(procurement_method="limited") == {works.id}
    assert found(procurement_method="limit") == set()  # exact, not a substring
    assert found(classification="CPV:45000000") == {works.id}  # exact: an element
    assert found(classification="CPV:45") == {road.id, works.id}  # a CPV prefix (division)
    assert found(classification="CPV:4500") == {works.id}
    assert found(classification="CPV:45*") == {road.id, works.id}
    assert found(classification="CPV:4523*") == {road.id}
    assert found(classification="UNSPSC:72141000") == {road.id}
    assert found(classification="UNSPSC:7214") == set()  # not CPV: exact unless *
    assert found(classification="UNSPSC:7214*") == {road.id}
    assert found(classification="CPV:45%*") == set()  # LIKE wildcards are literal
    assert found(currency="KRW", status="active", classification="CPV:45*") == {road.id}
    assert found(currency="", status="", classification="") == {
        road.id,
        works.id,
        lights.id,
        bare.id,
    }


def test_procurement_filters_keep_ordering_and_cursor_pages(api, owner, source_a):
    Bid.objects.bulk_create(
        new_bid(
            source_a,
            views=n,
            currency="KRW" if n % 2 else "USD",
            status=Bid.Status.ACTIVE,
            classifications=[f"CPV:45{n:06d}"],
        )
        for n in range(30)
    )
    api.force_authenticate(owner)
    params = {"ordering": "-views", "page_size": 4, "currency": "krw", "classification": "CPV:45*"}
    response = api.get("/api/v1/bids/", params)
    seen = []
    while True:
        body = response.json()
        assert response.status_code == 200, body
        seen += [row["views"] for row in body["results"]]
        assert {row["currency"] for row in body["results"]} <= {"KRW"}
        if not body["next"]:
            break
        response = api.get(body["next"])
    assert seen == list(range(29, 0, -2))


def test_classification_filters_plans(source_a):
    Bid.objects.bulk_create(
        new_bid(source_a, classifications=[f"CPV:{45000000 + n}"], status=Bid.Status.ACTIVE)
        for n in range(50)
    )

    def plan(params) -> str:
        queryset = BidFilter(params, queryset=Bid.objects.all()).qs
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: show what can serve
            return queryset.order_by().values("id").explain()

    assert "bid_classifications" in plan({"classification": "CPV:45000007"})
    assert "bid_ws_status" in plan({"status": "cancelled", "workspace": source_a.workspace_id})
    prefix = BidFilter({"classification": "CPV:45*"}, queryset=Bid.objects.all()).qs
    assert "starts_with" in str(prefix.query)
    assert prefix.count() == 50


# --- Search --------------------------------------------------------------------------------


def test_search_finds_substrings_of_titles_korean_included(api, owner, source_a):
    road = make_bid(source_a, title="[입찰] 서울특별시 도로 보수공사")
    sewer = make_bid(source_a, title="[긴급] 하수관로 정비공사")
    lights = make_bid(source_a, title="Supply of LED street lighting")
    percent = make_bid(source_a, title="Discount 50% on_site")
    api.force_authenticate(owner)

    def found(text: str) -> set[int]:
        return set(ids(api.get("/api/v1/bids/", {"search": text})))

    assert found("도로 보수") == {road.id}
    assert found("공사") == {road.id, sewer.id}  # two syllables: no trigram, still found
    assert found("하수관로 정비") == {sewer.id}
    assert found("led STREET") == {lights.id}
    assert found("50%") == {percent.id}  # LIKE wildcards are literal
    assert found("n_s") == {percent.id}
    assert found("0%_") == set()
    assert found("") == {road.id, sewer.id, lights.id, percent.id}


def test_search_is_served_by_the_title_trigram_index(source_a):
    Bid.objects.bulk_create(new_bid(source_a, title=f"도로 보수공사 {n}") for n in range(50))
    queryset = BidFilter({"search": "보수공사"}, queryset=Bid.objects.all()).qs
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: make the planner show
        plan = queryset.order_by().values("id").explain()  # whether the index can serve it
    assert "bid_title_trgm" in plan, plan
    assert "ILIKE" in str(queryset.query) or "~~*" in plan


# --- Ordering and keyset pages ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("ordering", "field"),
    [(None, "post_date"), ("-post_date", "post_date"), ("-views", "views"), ("-amount", "amount")],
)
def test_orderings_are_descending_with_nulls_last_and_ties_by_id(
    api, owner, source_a, ordering, field
):
    values = {
        "post_date": [dt.date(2026, 1, 1), dt.date(2026, 2, 1), None],
        "views": [3, 40, None],
        "amount": [Decimal("9.50"), Decimal("100.00"), None],
    }[field]
    bids = [make_bid(source_a, **{field: value}) for value in values * 2]
    api.force_authenticate(owner)
    params = {"ordering": ordering} if ordering else {}
    got = ids(api.get("/api/v1/bids/", params))
    by_value = {bid.id: getattr(bid, field) for bid in bids}
    expected = sorted(
        by_value, key=lambda pk: (by_value[pk] is not None, by_value[pk] or 0, pk), reverse=True
    )
    assert got == expected


def _key(bid: Bid, field: str) -> tuple:
    value = getattr(bid, field)
    return (value is not None, value if value is not None else 0, bid.id)


@pytest.mark.parametrize(
    ("ordering", "field", "values"),
    [
        ("-post_date", "post_date", [dt.date(2026, 1, d) for d in (1, 2, 2, 3, 5)] + [None]),
        ("-views", "views", [0, 7, 7, 7, 100, None]),
        ("-amount", "amount", [Decimal("1.00"), Decimal("2.50"), Decimal("2.50"), None]),
    ],
)
def test_a_cursor_walk_visits_every_row_once_while_rows_are_inserted(
    api, owner, source_a, ordering, field, values
):
    existing = [
        make_bid(source_a, **{field: v}) for v in itertools.islice(itertools.cycle(values), 45)
    ]
    highest = max(v for v in values if v is not None)
    lowest = min(v for v in values if v is not None)
    api.force_authenticate(owner)
    seen: list[int] = []
    inserted_after: list[Bid] = []
    inserted_before: list[Bid] = []
    url = f"/api/v1/bids/?page_size=7&ordering={ordering}"
    pages = 0
    while url:
        response = api.get(url)
        page = ids(response)
        assert len(page) <= 7
        seen += page
        pages += 1
        cursor = Bid.objects.get(pk=page[-1])
        # Between pages: a row landing before the cursor (a top value) and one after it.
        inserted_before.append(make_bid(source_a, **{field: highest}))
        after = make_bid(source_a, **{field: lowest})
        (inserted_after if _key(after, field) < _key(cursor, field) else inserted_before).append(
            after
        )
        url = response.json()["next"]
    assert len(seen) == len(set(seen)), "a row was served twice"
    assert {bid.id for bid in existing} <= set(seen), "a row was skipped"
    assert {bid.id for bid in inserted_after} <= set(seen)
    assert not {bid.id for bid in inserted_before} & set(seen)
    rows = {bid.id: bid for bid in Bid.objects.filter(pk__in=seen)}
    keys = [_key(rows[pk], field) for pk in seen]
    assert keys == sorted(keys, reverse=True)
    assert pages >= 45 // 7


def test_a_tampered_cursor_is_refused(api, owner, source_a):
    for _ in range(3):
        make_bid(source_a, post_date=dt.date(2026, 1, 1))
    api.force_authenticate(owner)
    next_url = api.get("/api/v1/bids/?page_size=1").json()["next"]
    cursor = next_url.split("cursor=")[1].split("&")[0]
    tampered = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    assert_invalid(api.get("/api/v1/bids/", {"page_size": 1, "cursor": tampered}), "cursor")
    # A cursor of another ordering is stale, not silently reinterpreted.
    assert_invalid(api.get("/api/v1/bids/", {"ordering": "-views", "cursor": cursor}), "cursor")


@pytest.mark.parametrize("size", [10, 200])
def test_query_count_does_not_grow_with_the_page(
    api, owner, workspace_a, source_a, django_assert_max_num_queries, size
):
    sources = [source_a, make_source(workspace_a, name="Port board")]
    crawls = [succeeded_crawl(source) for source in sources]
    Bid.objects.bulk_create(
        new_bid(sources[n % 2], first_crawl=crawls[n % 2], last_crawl=crawls[n % 2], views=n)
        for n in range(210)
    )
    api.force_authenticate(owner)
    with django_assert_max_num_queries(2):  # the caller's workspace ids, the page
        response = api.get(f"/api/v1/bids/?page_size={size}&ordering=-views")
    assert len(ids(response)) == size
    _, raw = services.token_create(user=owner, workspace=workspace_a, name="ci")
    api.force_authenticate(None)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    with django_assert_max_num_queries(4):  # token, membership, last use, the page
        response = api.get(f"/api/v1/bids/?page_size={size}&search=notice&source={source_a.id}")
    assert len(ids(response)) == min(size, 105)
