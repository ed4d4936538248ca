"""Finding notices: `q` (full text and parts of words over title, department, reference and the
text of `extra`), `extra=key:value`, deadline filters and the deadline orderings, their keyset
pages, their 400s, their query budgets and the indexes that serve them."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re

import pytest
from django.db import connection
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from crawls import selectors
from crawls.filters import BidFilter
from crawls.models import Bid, Membership
from notifications import services as notification_services
from tests.clients import assert_invalid
from tests.clients import result_ids as ids
from tests.factories import join, make_bid, make_source, new_bid

pytestmark = pytest.mark.django_db


@pytest.fixture
def source_a(workspace_a):
    return make_source(workspace_a, "City board")


@pytest.fixture
def notices(source_a):
    """Five bids whose words sit in different fields."""
    return {
        "road": make_bid(
            source_a, title="[입찰] 서울특별시 도로보수공사", department="서울시 도로과"
        ),
        "lights": make_bid(source_a, title="Supply of LED street lighting", department="Busan"),
        "ref": make_bid(source_a, title="Cleaning services", reference="PPS-2026-00417"),
        "extra": make_bid(
            source_a,
            title="Office furniture",
            extra={
                "attachment": "설계서.hwp",
                "contact": {"name": "Kim Minsu", "phones": ["02-555-0199"]},
                "lot": 98765,
            },
        ),
        "dept": make_bid(source_a, title="Printer toner", department="조달청 구매총괄과"),
    }


# --- q -------------------------------------------------------------------------------------------


def test_q_finds_words_and_parts_of_words_in_every_text_field(api, owner, notices):
    api.force_authenticate(owner)

    def found(text: str) -> set[str]:
        got = set(ids(api.get("/api/v1/bids/", {"q": text})))
        return {name for name, bid in notices.items() if bid.id in got}

    assert found("보수") == {"road"}  # inside a Korean compound (trigrams)
    assert found("도로보수공사") == {"road"}
    assert found("도로") == {"road"}  # two syllables: title and department
    assert found("구매총괄과") == {"dept"}
    assert found("street") == {"lights"}  # a whole English word (full text)
    assert found("STREET light") == {"lights"}  # any case; "light" is part of "lighting"
    assert found("lighting supply") == {"lights"}  # every word, in any order
    assert found("lighting 보수") == set()  # ... all of them
    assert found("00417") == {"ref"}  # the reference
    assert found("pps-2026") == {"ref"}
    assert found("설계서") == {"extra"}  # a string of `extra`
    assert found("minsu") == {"extra"}  # nested
    assert found("555-0199") == {"extra"}  # inside a nested list
    assert found("98765") == set()  # numbers of `extra` are not text
    assert found("attachment") == set()  # nor are its keys
    assert found("50%") == set()  # LIKE wildcards are literal
    assert found("") == set(notices)


def test_q_and_search_combine_with_the_other_filters(api, owner, notices, source_a):
    other = make_bid(source_a, title="도로 보수 2", views=5)
    api.force_authenticate(owner)
    got = ids(api.get("/api/v1/bids/", {"q": "보수", "views_min": 1}))
    assert got == [other.id]
    got = ids(api.get("/api/v1/bids/", {"q": "보수", "search": "보수공사"}))
    assert got == [notices["road"].id]


# --- extra=key:value -----------------------------------------------------------------------------


def test_extra_filters_match_top_level_string_values_exactly(api, owner, source_a):
    hwp = make_bid(source_a, extra={"attachment": "설계서.hwp", "kind": "goods"})
    pdf = make_bid(source_a, extra={"attachment": "spec.pdf", "kind": "goods"})
    link = make_bid(source_a, extra={"url": "https://example.org/a,b", "kind": "works"})
    make_bid(source_a, extra={"nested": {"kind": "goods"}})
    make_bid(source_a)
    api.force_authenticate(owner)

    def found(*pairs: str) -> set[int]:
        return set(ids(api.get("/api/v1/bids/", {"extra": list(pairs)})))

    assert found("attachment:설계서.hwp") == {hwp.id}
    assert found("kind:goods") == {hwp.id, pdf.id}  # top-level keys only
    assert found("kind:goods", "attachment:spec.pdf") == {pdf.id}  # all must hold
    assert found("url:https://example.org/a,b") == {link.id}  # the key ends at the first colon
    assert found("attachment:설계서") == set()  # exactly
    assert found("kind:") == set()


# --- Deadlines -----------------------------------------------------------------------------------


def test_deadline_filters(api, owner, source_a):
    at = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)
    early = make_bid(source_a, deadline=at)
    late = make_bid(source_a, deadline=at + dt.timedelta(days=2))
    make_bid(source_a, deadline=None)
    api.force_authenticate(owner)

    def found(**params) -> set[int]:
        return set(ids(api.get("/api/v1/bids/", params)))

    assert found(deadline_after="2026-12-10T09:00:00Z") == {early.id, late.id}
    assert found(deadline_after="2026-12-10T09:00:01Z") == {late.id}
    assert found(deadline_before="2026-12-10T09:00:00Z") == {early.id}
    assert found(deadline_before="2026-12-10T08:59:59Z") == set()
    # A date alone: from its start, or to its end (the server's zone, UTC in tests).
    assert found(deadline_before="2026-12-10") == {early.id}
    assert found(deadline_after="2026-12-12") == {late.id}
    assert found(deadline_after="2026-12-10", deadline_before="2026-12-11") == {early.id}


def test_closing_within_days_is_from_now(api, owner, source_a):
    now = timezone.now()
    past = make_bid(source_a, deadline=now - dt.timedelta(hours=1))
    soon = make_bid(source_a, deadline=now + dt.timedelta(days=2))
    later = make_bid(source_a, deadline=now + dt.timedelta(days=20))
    make_bid(source_a, deadline=None)
    api.force_authenticate(owner)
    assert set(ids(api.get("/api/v1/bids/", {"closing_within_days": 3}))) == {soon.id}
    assert set(ids(api.get("/api/v1/bids/", {"closing_within_days": 30}))) == {soon.id, later.id}
    assert ids(api.get("/api/v1/bids/", {"closing_within_days": 1})) == []
    assert past.id not in ids(api.get("/api/v1/bids/", {"closing_within_days": 365}))


def _deadline_key(bid: Bid, ascending: bool) -> tuple:
    value = bid.deadline
    if ascending:
        return (value is None, value or dt.datetime.min.replace(tzinfo=dt.UTC), bid.id)
    return (value is not None, value or dt.datetime.min.replace(tzinfo=dt.UTC), bid.id)


@pytest.mark.parametrize("ordering", ["deadline", "-deadline"])
def test_deadline_orderings_walk_every_row_once_with_ties_and_nulls(api, owner, source_a, ordering):
    base = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    values = [base, base + dt.timedelta(days=1), base + dt.timedelta(days=1), None, base]
    bids = [
        make_bid(source_a, deadline=value)
        for value in itertools.islice(itertools.cycle(values), 33)
    ]
    ascending = ordering == "deadline"
    expected = [
        bid.id
        for bid in sorted(bids, key=lambda b: _deadline_key(b, ascending), reverse=not ascending)
    ]
    api.force_authenticate(owner)
    seen: list[int] = []
    pages = 0
    url = f"/api/v1/bids/?page_size=4&ordering={ordering}"
    while url:
        response = api.get(url)
        page = ids(response)
        assert 1 <= len(page) <= 4
        seen += page
        pages += 1
        url = response.json()["next"]
    assert seen == expected
    assert pages == 9
    # The export reads the same order, through its own keyset walk.
    response = api.get("/api/v1/bids/export/", {"type": "jsonl", "ordering": ordering})
    body = b"".join(response.streaming_content).decode()
    assert [json.loads(line)["id"] for line in body.splitlines()] == expected


def test_an_ascending_export_of_several_workspaces_is_one_ordered_walk(
    owner, workspace_a, workspace_b, source_a
):
    join(workspace=workspace_b, user=owner, role=Membership.Role.MEMBER)
    source_b = make_source(workspace_b, "Port board")
    base = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    Bid.objects.bulk_create(
        new_bid(
            (source_a, source_b)[n % 2],
            deadline=base + dt.timedelta(hours=n % 7) if n % 5 else None,
        )
        for n in range(130)
    )
    rows = selectors.bid_rows_in_order(
        queryset=selectors.bid_list().visible_to(owner),
        field="deadline",
        workspace_ids=[workspace_a.id, workspace_b.id],
        chunk_size=20,
        ascending=True,
    )
    expected = list(
        Bid.objects.order_by(F("deadline").asc(nulls_last=True), "id").values_list("id", flat=True)
    )
    assert [row["id"] for row in rows] == expected


# --- Bad values: 400 naming the parameter --------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": "x" * 401}, "q"),
        ({"q": " ".join("abcdefghi")}, "q"),  # nine words
        ({"q": "a\x00b"}, "q"),
        ({"extra": "no-colon"}, "extra"),
        ({"extra": "bad key:1"}, "extra"),
        ({"extra": ":value"}, "extra"),
        ({"extra": "k" * 65 + ":v"}, "extra"),
        ({"extra": "k:" + "v" * 301}, "extra"),
        ({"extra": [f"k{n}:v" for n in range(6)]}, "extra"),
        ({"deadline_after": "tomorrow"}, "deadline_after"),
        ({"deadline_before": "2026-02-30"}, "deadline_before"),
        ({"closing_within_days": "366"}, "closing_within_days"),
        ({"closing_within_days": "-1"}, "closing_within_days"),
        ({"closing_within_days": "soon"}, "closing_within_days"),
        ({"ordering": "deadline_at"}, "ordering"),
    ],
)
def test_bad_search_parameters_answer_400_naming_the_parameter(api, owner, source_a, params, field):
    make_bid(source_a)
    api.force_authenticate(owner)
    assert_invalid(api.get("/api/v1/bids/", params), field)


def test_q_at_its_limits_is_accepted(api, owner, source_a):
    make_bid(source_a)
    api.force_authenticate(owner)
    assert ids(api.get("/api/v1/bids/", {"q": "x" * 400})) == []
    assert ids(api.get("/api/v1/bids/", {"q": " ".join("abcdefgh")})) == []


def test_alert_rules_validate_the_new_filters(source_a):
    errors = notification_services.alert_filter_errors
    good = {"q": "도로 보수", "extra": ["kind:goods"], "closing_within_days": 7}
    assert errors(filter=good) == {}
    assert errors(filter={"deadline_after": "2026-12-01", "deadline_before": "2026-12-31"}) == {}
    assert set(errors(filter={"q": " ".join("abcdefghi")})) == {"q"}
    assert set(errors(filter={"extra": "nokey"})) == {"extra"}
    assert set(errors(filter={"closing_within_days": 400})) == {"closing_within_days"}
    saved = BidFilter(
        {"q": "보수", "extra": ["kind:goods"]}, queryset=Bid.objects.all()
    )  # a rule's saved filter, as plain data
    wanted = make_bid(source_a, title="도로보수", extra={"kind": "goods"})
    make_bid(source_a, title="도로보수", extra={"kind": "works"})
    assert saved.is_valid(), saved.errors
    assert list(saved.qs) == [wanted]


def test_the_bids_page_has_the_new_filters_and_orderings(client, owner, source_a):
    near = make_bid(source_a, title="도로보수공사", deadline=timezone.now() + dt.timedelta(days=1))
    far = make_bid(source_a, title="도로보수 2", deadline=timezone.now() + dt.timedelta(days=9))
    make_bid(source_a, title="Office furniture")
    client.force_login(owner)
    response = client.get(
        reverse("crawls:bids"), {"q": "보수", "ordering": "-deadline", "extra": "", "page_size": 1}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="q"' in html
    assert 'name="closing_within_days"' in html
    assert "Deadline, soonest first" in html
    rows = [int(pk) for pk in re.findall(r'data-bid="(\d+)"', html)]
    assert rows == [far.id]
    response = client.get(reverse("crawls:bids"), {"q": "보수", "ordering": "deadline"})
    rows = [int(pk) for pk in re.findall(r'data-bid="(\d+)"', response.content.decode())]
    assert rows == [near.id, far.id]
    response = client.get(reverse("crawls:bids"), {"extra": "bad key:1"})
    assert response.status_code == 400


# --- Query budgets -------------------------------------------------------------------------------


def test_search_filters_keep_the_query_budget(api, owner, source_a, django_assert_max_num_queries):
    base = timezone.now()
    Bid.objects.bulk_create(
        new_bid(
            source_a,
            title=f"도로보수공사 {n}",
            extra={"kind": "goods" if n % 2 else "works"},
            deadline=base + dt.timedelta(hours=n) if n % 4 else None,
        )
        for n in range(120)
    )
    api.force_authenticate(owner)
    params = {
        "q": "보수공사",
        "extra": "kind:goods",
        "closing_within_days": 30,
        "ordering": "deadline",
        "page_size": 20,
    }
    with django_assert_max_num_queries(2):  # the caller's workspace ids, the page
        response = api.get("/api/v1/bids/", params)
    assert len(ids(response)) == 20
    with django_assert_max_num_queries(3):  # ids, the page's non-null deadlines, the nulls
        response = api.get(response.json()["next"] + "&page_size=50")
    assert len(ids(response)) == 40  # the other 40 of the 60 goods (all odd n have a deadline)
    params = {"q": "보수공사", "deadline_after": "2020-01-01", "ordering": "-deadline"}
    with django_assert_max_num_queries(2):
        assert len(ids(api.get("/api/v1/bids/", params))) == 50


# --- Plans: the indexes serve the filters and the orderings --------------------------------------


@pytest.fixture
def thousands(source_a):
    base = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    Bid.objects.bulk_create(
        new_bid(
            source_a,
            title=f"공고 {n} 물품 구매 notice",
            reference=f"REF-{n:06d}",
            extra={"attachment": f"file-{n}.hwp", "kind": ("goods", "works", "services")[n % 3]},
            deadline=base + dt.timedelta(minutes=n) if n % 10 else None,
        )
        for n in range(4000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crawls_bid")


def _plan(queryset, *, seqscan: bool = True) -> str:
    with connection.cursor() as cursor:
        if not seqscan:
            cursor.execute("SET LOCAL enable_seqscan = off")  # show whether an index can serve
        plan = queryset.explain()
        cursor.execute("SET LOCAL enable_seqscan = on")
    return plan


def test_q_is_served_by_the_full_text_and_trigram_indexes(thousands):
    rare = BidFilter({"q": "REF-001234"}, queryset=Bid.objects.all()).qs.order_by().values("id")
    # A few thousand rows fresh from a bulk insert: a sequential scan is cheaper to the planner
    # still (docs/query-plans.md has the plans at 100,000), so ask whether the indexes can serve.
    plan = _plan(rare, seqscan=False)
    assert "BitmapOr" in plan, plan
    assert "bid_search_fts" in plan, plan
    assert "bid_search_trgm" in plan, plan
    assert len(rare) == 1
    korean = BidFilter({"q": "1234 물품"}, queryset=Bid.objects.all()).qs.order_by()
    assert "bid_search_trgm" in _plan(korean.values("id"), seqscan=False)
    assert korean.count() == 1


def test_extra_is_served_by_its_gin_index(thousands):
    queryset = BidFilter({"extra": "attachment:file-77.hwp"}, queryset=Bid.objects.all()).qs
    plan = _plan(queryset.order_by().values("id"))
    assert "bid_extra" in plan, plan
    assert queryset.count() == 1


@pytest.mark.parametrize(
    ("order", "index"),
    [
        ((F("deadline").asc(nulls_last=True), F("id").asc()), "bid_ws_deadline"),
        ((F("deadline").desc(nulls_last=True), F("id").desc()), "bid_ws_deadline_desc"),
    ],
)
def test_a_page_by_deadline_is_an_index_scan(thousands, source_a, order, index):
    """A page reads the deadlines, then the bids without one, each range an index's."""
    bids = selectors.bid_list().filter(workspace_id__in=[source_a.workspace_id]).order_by(*order)
    values = bids.filter(deadline__isnull=False)
    plan = _plan(values.values("id")[:51])
    assert f"Index Scan using {index} on" in plan, plan
    assert "Sort" not in plan, plan
    later = values.filter(deadline__gte=dt.datetime(2026, 12, 2, tzinfo=dt.UTC))
    assert f"Index Scan using {index} on" in _plan(later.values("id")[:51])
    # The bids without a deadline by id alone, as pages and exports read them.
    nulls = _plan(bids.filter(deadline__isnull=True).order_by(order[1]).values("id")[:51])
    # The partial index, or the primary key when the table is this one workspace's (here).
    assert re.search(r"Index Scan (Backward )?using (bid_ws_no_deadline|crawls_bid_pkey)", nulls)
    assert "Sort" not in nulls, nulls


def test_the_deadline_indexes_do_not_serve_other_filters(thousands, source_a):
    """Partial on a deadline, they stay out of plans that do not ask about one."""
    queryset = BidFilter(
        {"status": "cancelled", "workspace": source_a.workspace_id}, queryset=Bid.objects.all()
    ).qs
    plan = _plan(queryset.order_by().values("id"), seqscan=False)
    assert "deadline" not in plan, plan
