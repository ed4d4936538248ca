"""/api/v1/bids/export: CSV and JSON Lines, streamed, scoped and filtered as the list."""

from __future__ import annotations

import csv
import datetime as dt
import http.client
import io
import json
import time
import tracemalloc
import warnings
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db.models import F
from django.test import AsyncClient

from crawls import selectors, services
from crawls.models import Bid, Membership
from tests.factories import NOW, join, make_bid, make_source, new_bid, succeeded_crawl

pytestmark = pytest.mark.django_db


@pytest.fixture
def source_a(workspace_a):
    return make_source(workspace_a, "City board")


# --- Export --------------------------------------------------------------------------------


def _read(response) -> bytes:
    assert response.status_code == 200, response.content
    assert response.streaming
    return b"".join(response.streaming_content)


def test_csv_export_has_a_header_korean_text_and_the_lists_filters(
    api, owner, workspace_a, source_a
):
    make_bid(source_a, title="Not this one", views=1)
    road = make_bid(source_a, title="서울특별시 도로 보수공사", views=30, department="조달청")
    trap = make_bid(source_a, title='=HYPERLINK("http://evil")', views=20, department="-조달청")
    api.force_authenticate(owner)
    response = api.get("/api/v1/bids/export/", {"views_min": 10, "ordering": "-views"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = dt.datetime.now(dt.UTC).date()  # TIME_ZONE is UTC in tests
    assert response["Content-Disposition"] == (
        f'attachment; filename="bids-{workspace_a.slug}-{today.isoformat()}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(_read(response).decode("utf-8"))))
    assert [int(r["id"]) for r in rows] == [road.id, trap.id]
    assert rows[0]["title"] == "서울특별시 도로 보수공사"
    assert rows[0]["department"] == "조달청"
    assert rows[0]["source_name"] == "City board"
    assert rows[0]["extra"] == "{}"
    assert rows[0]["amount"] == ""
    assert rows[1]["title"] == '\'=HYPERLINK("http://evil")'  # kept as text by spreadsheets
    assert rows[1]["department"] == "'-조달청"
    assert list(rows[0]) == list(api.get("/api/v1/bids/").json()["results"][0])


def test_exports_carry_the_procurement_columns(api, owner, source_a):
    make_bid(
        source_a,
        title="하수관로 정비공사",
        amount=Decimal("4477000000"),
        currency="KRW",
        status=Bid.Status.CANCELLED,
        procurement_method="open",
        classifications=["CPV:45232410", "UNSPSC:72141000"],
    )
    make_bid(source_a, title="Street lights", procurement_method="=cmd()", classifications=[])
    api.force_authenticate(owner)
    response = api.get("/api/v1/bids/export/", {"currency": "krw", "status": "cancelled"})
    rows = list(csv.DictReader(io.StringIO(_read(response).decode("utf-8"))))
    assert len(rows) == 1
    assert rows[0]["amount"] == "4477000000.00"
    assert rows[0]["currency"] == "KRW"
    assert rows[0]["status"] == "cancelled"
    assert rows[0]["procurement_method"] == "open"
    assert rows[0]["classifications"] == "CPV:45232410; UNSPSC:72141000"
    every = list(csv.DictReader(io.StringIO(_read(api.get("/api/v1/bids/export/")).decode())))
    lights = next(row for row in every if row["title"] == "Street lights")
    assert lights["classifications"] == ""
    assert lights["currency"] == ""
    assert lights["status"] == "unknown"
    assert lights["procurement_method"] == "'=cmd()"  # kept as text by spreadsheets
    response = api.get("/api/v1/bids/export/", {"type": "jsonl", "classification": "CPV:45*"})
    (line,) = _read(response).decode("utf-8").splitlines()
    row = json.loads(line)
    assert row["classifications"] == ["CPV:45232410", "UNSPSC:72141000"]
    assert (row["currency"], row["status"], row["procurement_method"]) == (
        "KRW",
        "cancelled",
        "open",
    )


def test_jsonl_export_lines_are_the_list_rows(api, owner, workspace_a, workspace_b, source_a):
    join(workspace=workspace_b, user=owner, role=Membership.Role.VIEWER)
    source_b = make_source(workspace_b, "City board")
    crawl = succeeded_crawl(source_a)
    for n in range(6):
        make_bid(
            source_a if n % 2 else source_b,
            title=f"하수관로 정비공사 {n}",
            views=n * 10 if n != 3 else None,
            amount=Decimal(n * 1000) if n % 3 else None,
            post_date=dt.date(2026, 1, n + 1) if n != 4 else None,
            deadline=NOW,
            extra={"n": n, "첨부": "공고문.hwp"},
            first_crawl=crawl if n % 2 else None,
        )
    api.force_authenticate(owner)
    for ordering in ("-post_date", "-views", "-amount"):
        listed = api.get("/api/v1/bids/", {"ordering": ordering}).json()["results"]
        response = api.get("/api/v1/bids/export/", {"type": "jsonl", "ordering": ordering})
        assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
        assert 'filename="bids-all-' in response["Content-Disposition"]  # two workspaces
        assert response["Content-Disposition"].endswith('.jsonl"')
        body = _read(response).decode("utf-8")
        assert "하수관로" in body  # not \\u-escaped
        assert [json.loads(line) for line in body.splitlines()] == listed
    one = api.get("/api/v1/bids/export/", {"type": "jsonl", "workspace": workspace_b.id})
    assert f'filename="bids-{workspace_b.slug}-' in one["Content-Disposition"]
    assert len(_read(one).splitlines()) == 3


def test_export_of_several_workspaces_is_one_ordered_walk(
    api, owner, workspace_a, workspace_b, source_a
):
    join(workspace=workspace_b, user=owner, role=Membership.Role.MEMBER)
    source_b = make_source(workspace_b, "City board")
    Bid.objects.bulk_create(
        new_bid(
            (source_a, source_b)[n % 2],
            post_date=dt.date(2026, 1, 1) + dt.timedelta(days=n % 7) if n % 5 else None,
        )
        for n in range(130)
    )
    api.force_authenticate(owner)
    rows = selectors.bid_rows_in_order(
        queryset=selectors.bid_list().visible_to(owner),
        field="post_date",
        workspace_ids=[workspace_a.id, workspace_b.id],
        chunk_size=20,
    )
    expected = list(
        Bid.objects.order_by(F("post_date").desc(nulls_last=True), "-id").values_list(
            "id", flat=True
        )
    )
    assert [row["id"] for row in rows] == expected
    body = _read(api.get("/api/v1/bids/export/", {"type": "jsonl"}))
    assert [json.loads(line)["id"] for line in body.splitlines()] == expected


def test_export_reads_rows_while_it_streams(api, owner, source_a):
    """Rows come in keyset chunks as the file is read: a bid inserted after the first bytes
    went out, sorting at the end, is in the file."""
    Bid.objects.bulk_create(
        new_bid(source_a, post_date=dt.date(2026, 1, 1)) for _ in range(2 * 2000 + 10)
    )
    api.force_authenticate(owner)
    response = api.get("/api/v1/bids/export/?type=jsonl")
    assert not response.is_async
    blocks = iter(response.streaming_content)
    first = next(blocks)
    late = make_bid(source_a, post_date=None)  # nulls last
    rest = b"".join(blocks)
    lines = (first + rest).splitlines()
    assert len(lines) == 2 * 2000 + 11
    assert json.loads(lines[-1])["id"] == late.id


@pytest.mark.django_db(transaction=True)  # the ASGI handler reads in a thread of its own
def test_export_under_asgi_is_an_async_stream(owner, workspace_a, source_a):
    Bid.objects.bulk_create(
        new_bid(source_a, title=f"공고 {n}", post_date=dt.date(2026, 1, 1)) for n in range(4500)
    )
    _, raw = services.token_create(user=owner, workspace=workspace_a, name="asgi")
    client = AsyncClient()

    async def read():
        response = await client.get(
            "/api/v1/bids/export/", {"type": "csv"}, headers={"Authorization": f"Bearer {raw}"}
        )
        blocks = aiter(response.streaming_content)
        first = await anext(blocks)
        late = await sync_to_async(make_bid)(source_a, post_date=None, title="늦은 공고")
        rest = [block async for block in blocks]
        return response, first + b"".join(rest), late

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response, body, late = async_to_sync(read)()
    assert response.status_code == 200
    assert response.is_async
    assert not [w for w in caught if "StreamingHttpResponse" in str(w.message)]
    lines = body.decode("utf-8").splitlines()
    assert len(lines) == 1 + 4500 + 1
    assert lines[-1].startswith(f"{late.id},")
    assert "늦은 공고" in lines[-1]


def test_export_memory_stays_flat(api, owner, source_a):
    count = 20_000
    Bid.objects.bulk_create(
        (
            new_bid(
                source_a,
                title=f"[입찰] 서울특별시 도로 보수공사 제{n}호 " + "가나다라" * 20,
                department="서울특별시 도시기반시설본부",
                views=n,
                post_date=dt.date(2026, 1, 1) + dt.timedelta(days=n % 300),
                amount=Decimal(n) * 1000,
                extra={"attachment": f"https://example.org/files/{n}.hwp"},
            )
            for n in range(count)
        ),
        batch_size=2000,
    )
    api.force_authenticate(owner)
    assert _read(api.get("/api/v1/bids/export/?views_max=0")).count(b"\n") == 2  # warm-up
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        everything = list(selectors.bid_list().values(*selectors.BID_FIELDS, "source_name"))
        _, materialised = tracemalloc.get_traced_memory()
        assert len(everything) == count
        del everything
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        response = api.get("/api/v1/bids/export/?type=csv&ordering=-views")
        size = lines = 0
        for block in response.streaming_content:
            size += len(block)
            lines += block.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    streamed = peak - before
    print(f"export of {count} bids ({size} B): peak {streamed} B, all rows held {materialised} B")
    assert lines == count + 1
    # Holding the rows (not even the file) costs several times what streaming them does.
    assert streamed * 3 < materialised, (streamed, materialised, size)
    assert streamed < 16 * 2**20, (streamed, materialised, size)


@pytest.mark.django_db(transaction=True)
def test_export_streams_through_daphne(daphne_server, owner, workspace_a):
    """Served by daphne: first bytes long before the last, and no whole-response buffering."""
    source = make_source(workspace_a, "City board")
    count = 20_000
    Bid.objects.bulk_create(
        (new_bid(source, title=f"도로 보수공사 {n}", views=n) for n in range(count)),
        batch_size=2000,
    )
    _, raw = services.token_create(user=owner, workspace=workspace_a, name="daphne")
    log_start = len(daphne_server.output())
    conn = http.client.HTTPConnection("127.0.0.1", daphne_server.port, timeout=60)
    started = time.monotonic()
    conn.request(
        "GET", "/api/v1/bids/export/?type=jsonl", headers={"Authorization": f"Bearer {raw}"}
    )
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Length") is None
    assert response.getheader("Transfer-Encoding") == "chunked"
    first = response.read1(65536)
    first_at = time.monotonic() - started
    body = first + response.read()
    total = time.monotonic() - started
    conn.close()
    lines = body.splitlines()
    assert len(lines) == count
    assert json.loads(lines[0])["views"] == count - 1
    assert first_at < total / 2, (first_at, total)
    print(f"daphne export of {count} bids: first bytes {first_at:.3f}s, all {total:.3f}s")
    assert "must consume synchronous iterators" not in daphne_server.output()[log_start:]
