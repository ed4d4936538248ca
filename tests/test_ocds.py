"""OCDS sources: release and record packages read into bid records (crawls.engine.ocds), and
the store applying one ocid's releases as one bid with revisions."""

from __future__ import annotations

import copy
import json
import pickle
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from crawls.engine import kinds, ocds, sandbox, urls
from crawls.engine.request import Request, item_hash
from crawls.engine.rules import RulesError
from crawls.engine.store import Item, bids_store
from crawls.models import Bid, BidRevision, Crawl, Source

FEED = "https://ocds.example.org/api/releases?page=1"
OCID = "ocds-213czf-000-00001"
RULES = ocds.rules_parse({})


def release(ident: str, when: str, *, ocid: str = OCID, tag=("tender",), **tender) -> dict:
    """A release of `ocid` with the given tender fields."""
    return {"ocid": ocid, "id": ident, "date": when, "tag": list(tag), "tender": tender}


def tender_release(**overrides) -> dict:
    """A full tender release, as a publisher's first release of a process is."""
    data = {
        "ocid": OCID,
        "id": f"{OCID}-tender-1",
        "date": "2026-03-02T09:00:00Z",
        "tag": ["tender"],
        "initiationType": "tender",
        "parties": [
            {"id": "GB-LAC-E09000003", "name": "London Borough of Barnet", "roles": ["buyer"]}
        ],
        "buyer": {"id": "GB-LAC-E09000003", "name": "London Borough of Barnet"},
        "tender": {
            "id": "T-2026-001",
            "title": "Road resurfacing, phase 2",
            "description": "Resurfacing of 12 km of roads.",
            "status": "active",
            "value": {"amount": 1250000.50, "currency": "GBP"},
            "procurementMethod": "open",
            "procurementMethodDetails": "Open procedure",
            "mainProcurementCategory": "works",
            "datePublished": "2026-03-01T23:30:00Z",
            "tenderPeriod": {
                "startDate": "2026-03-02T00:00:00Z",
                "endDate": "2026-04-01T12:00:00Z",
            },
            "items": [
                {
                    "id": "1",
                    "classification": {"scheme": "CPV", "id": "45233142"},
                    "additionalClassifications": [{"scheme": "CPV", "id": "45233220"}],
                },
                {"id": "2", "classification": {"scheme": "CPV", "id": "45233142"}},
            ],
            "documents": [
                {
                    "id": "d1",
                    "documentType": "tenderNotice",
                    "url": "https://tenders.example.org/notice/1",
                }
            ],
        },
    }
    data.update(overrides)
    return data


def package(*releases: dict, **extra) -> bytes:
    return json.dumps({"uri": FEED, "releases": list(releases), **extra}).encode()


def read(body: bytes, *, rules=RULES, request: Request | None = None, **kwargs):
    return ocds.read(body, rules=rules, url=FEED, request=request or Request(FEED), **kwargs)


# Rules


def test_rules_parse_defaults_and_dump():
    parsed = ocds.rules_parse({})
    assert ocds.rules_dump(parsed) == {"timezone": "UTC", "max_pages": 1000}
    seoul = ocds.rules_parse({"timezone": "Asia/Seoul", "max_pages": 5})
    assert (seoul.timezone, seoul.max_pages) == (ZoneInfo("Asia/Seoul"), 5)
    assert pickle.loads(pickle.dumps(seoul)) == seoul  # noqa: S301 - our own bytes
    assert kinds.rules_dump("ocds", kinds.rules_parse("ocds", {"max_pages": 5})) == {
        "timezone": "UTC",
        "max_pages": 5,
    }


def test_rules_parse_names_each_problem_by_path():
    with pytest.raises(RulesError) as caught:
        ocds.rules_parse({"timezone": "Mars/Olympus", "max_pages": 0, "items": "x"})
    assert set(caught.value.errors) == {"timezone", "max_pages", "items"}
    with pytest.raises(RulesError) as caught:
        ocds.rules_parse({"max_pages": "ten"})
    assert "whole number" in caught.value.errors["max_pages"]
    with pytest.raises(RulesError) as caught:
        ocds.rules_parse([])
    assert set(caught.value.errors) == {"rules"}


# Release packages


def test_read_release_package_maps_the_tender():
    page = read(package(tender_release()))
    assert page.errors == {}
    assert page.timeout is None
    [record] = page.records
    assert record.key == OCID
    assert record.partial is True
    assert record.version == f"2026-03-02T09:00:00.000000Z|{OCID}-tender-1"
    assert record.url == "https://tenders.example.org/notice/1"
    assert record.errors == {}
    fields = record.fields
    assert fields["reference"] == "T-2026-001"
    assert fields["title"] == "Road resurfacing, phase 2"
    assert fields["department"] == "London Borough of Barnet"
    assert fields["amount"] == Decimal("1250000.50")
    assert fields["currency"] == "GBP"
    assert fields["post_date"] == date(2026, 3, 1)
    assert fields["deadline"] == datetime(2026, 4, 1, 12, 0, tzinfo=UTC)
    assert fields["status"] == "active"
    assert fields["procurement_method"] == "open"
    assert fields["classifications"] == ["CPV:45233142", "CPV:45233220"]
    assert fields["ocid"] == OCID
    assert fields["release_id"] == f"{OCID}-tender-1"
    assert fields["tag"] == ["tender"]
    assert fields["procurement_method_details"] == "Open procedure"
    assert fields["main_procurement_category"] == "works"
    assert fields["description"] == "Resurfacing of 12 km of roads."


def test_read_post_date_is_a_date_in_the_rules_timezone():
    page = read(package(tender_release()), rules=ocds.rules_parse({"timezone": "Asia/Seoul"}))
    # 23:30 UTC on 1 March is 08:30 on 2 March in Seoul.
    assert page.records[0].fields["post_date"] == date(2026, 3, 2)


def test_read_department_falls_back_to_procuring_entity_and_parties():
    entity = tender_release(buyer=None, parties=[])
    entity["tender"]["procuringEntity"] = {"id": "PE-1", "name": "Roads Agency"}
    assert read(package(entity)).records[0].fields["department"] == "Roads Agency"
    by_reference = tender_release(buyer={"id": "GB-LAC-E09000003"})
    assert read(package(by_reference)).records[0].fields["department"] == (
        "London Borough of Barnet"
    )
    by_role = tender_release(
        buyer=None,
        parties=[
            {"id": "S-1", "name": "Acme Ltd", "roles": ["tenderer"]},
            {"id": "PE-2", "name": "Water Board", "roles": ["procuringEntity"]},
        ],
    )
    assert read(package(by_role)).records[0].fields["department"] == "Water Board"


def test_read_missing_fields_are_left_out_and_reference_falls_back_to_ocid():
    no_id = release("r1", "2026-03-02T09:00:00Z", title="Bridge repairs")
    assert read(package(no_id)).records[0].fields["reference"] == OCID
    # Without a tender (a planning or contract release) the reference is left out: the stored
    # one (an earlier page's tender.id) stays.
    bare = {"ocid": OCID, "id": "r1", "date": "2026-03-02T09:00:00Z", "tag": ["planning"]}
    page = read(package(bare))
    [record] = page.records
    assert record.errors == {}
    assert record.fields == {
        "ocid": OCID,
        "release_id": "r1",
        "release_date": "2026-03-02T09:00:00+00:00",
        "tag": ["planning"],
    }


def test_read_bad_values_leave_the_field_empty_with_an_error():
    bad = release(
        "r1",
        "2026-03-02T09:00:00Z",
        title="Bridge repairs",
        value={"amount": "about a million", "currency": "pounds of gold"},
        datePublished="last Tuesday",
        tenderPeriod={"endDate": "2026-13-45"},
        status="on hold",
    )
    [record] = read(package(bad)).records
    assert record.fields["title"] == "Bridge repairs"
    for name in ("amount", "currency", "post_date", "deadline", "status"):
        assert record.fields[name] is None, name
    assert set(record.errors) == {"amount", "currency", "post_date", "deadline", "status"}
    assert "'about a million'" in record.errors["amount"]
    assert "last Tuesday" in record.errors["post_date"]


def test_read_cuts_texts_to_the_bid_columns():
    data = tender_release(buyer={"name": "B" * 400})
    data["tender"].update(id="R" * 300, procurementMethod="M" * 150)
    fields = read(package(data)).records[0].fields
    assert (len(fields["department"]), len(fields["reference"])) == (300, 200)
    assert len(fields["procurement_method"]) == 100


def test_read_amount_as_string_and_huge_amount():
    text = release("r1", "2026-03-02T09:00:00Z", value={"amount": "1,500.25"})
    assert read(package(text)).records[0].fields["amount"] == Decimal("1500.25")
    huge = release("r1", "2026-03-02T09:00:00Z", value={"amount": 1e30})
    [record] = read(package(huge)).records
    assert record.fields["amount"] is None
    assert "too large" in record.errors["amount"]


def test_read_release_without_ocid_is_a_page_error():
    orphan = tender_release()
    del orphan["ocid"]
    page = read(package(orphan, release("r2", "2026-03-03T00:00:00Z", ocid="ocds-x-2")))
    assert page.errors == {"releases[0]": "a release without an ocid"}
    assert [r.key for r in page.records] == ["ocds-x-2"]


def test_read_amendments_apply_in_date_order_whatever_the_input_order():
    first = tender_release()
    amended = release(
        f"{OCID}-amend-2",
        "2026-03-10T09:00:00Z",
        tag=("tenderAmendment",),
        value={"amount": 1400000},
        tenderPeriod={"endDate": "2026-04-15T12:00:00Z"},
    )
    cancelled = release(
        f"{OCID}-cancel-3", "2026-03-20T09:00:00+09:00", tag=("tenderCancellation",)
    )
    page = read(package(cancelled, first, amended))
    assert page.errors == {}
    assert [r.fields["release_id"] for r in page.records] == [
        f"{OCID}-tender-1",
        f"{OCID}-amend-2",
        f"{OCID}-cancel-3",
    ]
    versions = [r.version for r in page.records]
    assert versions == sorted(versions)
    first_state, amended_state, cancelled_state = (r.fields for r in page.records)
    assert first_state["amount"] == Decimal("1250000.50")
    # Each record is the compiled state after its release: the amendment keeps the title and
    # currency of the first release and changes the amount and the deadline.
    assert amended_state["title"] == "Road resurfacing, phase 2"
    assert amended_state["currency"] == "GBP"
    assert amended_state["amount"] == Decimal(1400000)
    assert amended_state["deadline"] == datetime(2026, 4, 15, 12, 0, tzinfo=UTC)
    assert amended_state["status"] == "active"
    assert cancelled_state["status"] == "cancelled"
    assert cancelled_state["tag"] == ["tenderCancellation"]
    assert cancelled_state["amount"] == Decimal(1400000)
    assert all(r.partial for r in page.records)


def test_read_releases_of_several_ocids_are_kept_apart():
    page = read(
        package(
            release("b1", "2026-03-05T00:00:00Z", ocid="ocds-b", title="B"),
            release("a1", "2026-03-04T00:00:00Z", ocid="ocds-a", title="A"),
            release("b0", "2026-03-01T00:00:00Z", ocid="ocds-b", title="B0", status="planned"),
        )
    )
    assert [(r.key, r.fields["title"]) for r in page.records] == [
        ("ocds-b", "B0"),
        ("ocds-b", "B"),
        ("ocds-a", "A"),
    ]
    assert page.records[1].fields["status"] == "active"  # planned, merged from b0


@pytest.mark.parametrize(
    ("status", "awards", "expected"),
    [
        ("planning", None, "active"),
        ("cancelled", None, "cancelled"),
        ("withdrawn", None, "cancelled"),
        ("unsuccessful", None, "closed"),
        ("complete", None, "closed"),
        ("complete", [{"id": "a1", "status": "cancelled"}], "closed"),
        (
            "complete",
            [{"id": "a1", "status": "active", "suppliers": [{"name": "Acme"}]}],
            "awarded",
        ),
    ],
)
def test_read_status_from_tender_status_and_awards(status, awards, expected):
    data = release("r1", "2026-03-02T00:00:00Z", status=status)
    if awards is not None:
        data["awards"] = awards
    [record] = read(package(data)).records
    assert record.fields["status"] == expected
    if expected == "awarded":
        assert record.fields["suppliers"] == ["Acme"]


def test_read_status_cancelled_by_tag_even_if_tender_status_is_active():
    data = release("r1", "2026-03-02T00:00:00Z", tag=("tenderCancellation",), status="active")
    assert read(package(data)).records[0].fields["status"] == "cancelled"


def test_merge_follows_ocds_rules():
    state = {
        "tender": {"title": "A", "value": {"amount": 1, "currency": "EUR"}, "items": [{"id": "1"}]},
        "tag": ["tender"],
    }
    change = {
        "tender": {"value": {"amount": 2}, "items": [{"id": "2"}], "title": None},
        "tag": ["tenderUpdate"],
    }
    assert ocds.merge(state, change) == {
        "tender": {"value": {"amount": 2, "currency": "EUR"}, "items": [{"id": "1"}, {"id": "2"}]},
        "tag": ["tenderUpdate"],
    }
    assert state["tender"]["title"] == "A"  # the state is not changed in place


# Record packages


def test_read_record_package_with_compiled_release():
    compiled = tender_release(id=f"{OCID}-compiled", tag=["compiled"])
    compiled["tender"]["status"] = "cancelled"
    body = json.dumps(
        {
            "records": [
                {
                    "ocid": OCID,
                    "releases": [
                        {"url": "https://ocds.example.org/r/1.json#r1", "date": "2026-03-02"},
                        {"url": "https://ocds.example.org/r/2.json#r2", "date": "2026-03-09"},
                    ],
                    "compiledRelease": compiled,
                }
            ]
        }
    ).encode()
    page = read(body)
    [record] = page.records
    assert record.partial is False  # a compiled release is the whole state
    assert record.fields["status"] == "cancelled"
    assert record.fields["title"] == "Road resurfacing, phase 2"
    assert page.errors == {
        "records[0].releases[0]": (
            "linked release not fetched: 'https://ocds.example.org/r/1.json#r1'"
        ),
        "records[0].releases[1]": (
            "linked release not fetched: 'https://ocds.example.org/r/2.json#r2'"
        ),
    }


def test_read_record_package_with_embedded_releases():
    first = tender_release()
    del first["ocid"]  # the record's ocid stands for its releases'
    update = release("r2", "2026-03-05T00:00:00Z", title="Road resurfacing, phase 2 (revised)")
    body = json.dumps(
        {
            "records": [
                {"ocid": OCID, "releases": [update, first], "compiledRelease": {"ocid": OCID}},
                {"ocid": "ocds-empty"},
            ]
        }
    ).encode()
    page = read(body)
    assert [(r.key, r.fields["title"], r.partial) for r in page.records] == [
        (OCID, "Road resurfacing, phase 2", True),
        (OCID, "Road resurfacing, phase 2 (revised)", True),
    ]
    assert page.records[1].fields["amount"] == Decimal("1250000.50")
    assert page.errors == {
        "records[1]": "a record without embedded releases or compiledRelease",
    }


# Paging, bounds, not OCDS


def test_read_links_next_requests_the_next_page():
    body = package(
        tender_release(),
        links={"next": "/api/releases?page=2&b=1", "prev": "https://ocds.example.org/x"},
    )
    page = read(body)
    assert page.requests == [
        Request("https://ocds.example.org/api/releases?b=1&page=2", context={"page": 2})
    ]
    second = read(
        package(links={"next": "https://ocds.example.org/api/releases?page=3"}),
        request=page.requests[0],
    )
    assert second.requests[0].context == {"page": 3}
    # A next link back to the page itself is not followed again.
    assert read(body, request=page.requests[0]).requests == []
    assert read(package(tender_release())).requests == []


def test_read_max_pages_caps_links_next():
    rules = ocds.rules_parse({"max_pages": 3})
    body = package(tender_release(), links={"next": "https://ocds.example.org/api?page=4"})
    page = read(body, rules=rules, request=Request(FEED, context={"page": 3}))
    assert page.requests == []
    assert "max_pages (3)" in page.errors["links.next"]
    assert len(page.records) == 1
    assert len(read(body, rules=rules, request=Request(FEED, context={"page": 2})).requests) == 1


def test_read_links_next_that_is_not_a_web_url_is_an_error():
    page = read(package(links={"next": "javascript:alert(1)"}))
    assert page.requests == []
    assert "not a web URL" in page.errors["links.next"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<html><body>Maintenance</body></html>", "not JSON"),
        (b'{"releases": "none"}', "not an OCDS release or record package"),
        (b"[1, 2, 3]", "not an OCDS release or record package: the document is a list"),
        (b'{"data": [{"ocid": "x"}]}', "package: no list of releases or records"),
        (b"[" * 500 + b"]" * 500, "nested deeper than"),
        (b'{"releases": [NaN]}', "not JSON"),
    ],
)
def test_read_what_is_not_a_package_is_a_response_error(body, why):
    page = read(body)
    assert page.records == []
    assert why in page.errors["response"]


def test_read_odd_shapes_are_errors_not_crashes():
    odd = release("r1", "2026-03-02T00:00:00Z", title=["not", "text"], items=5, documents=7)
    odd.update(awards=3, parties="none", buyer="Ministry")
    page = read(package(odd, "not a release", {"ocid": OCID, "id": "r2", "date": 20260302}))
    assert page.errors["releases[1]"] == "a release must be an object, not a string"
    assert "releases[2].date" in page.errors
    first, undated = page.records[1], page.records[0]
    assert undated.version == ""  # no date: applied first, never skipped as older
    assert first.fields["title"] is None
    assert "expected text" in first.errors["title"]
    assert "department" not in first.fields
    assert "classifications" not in first.fields


def test_read_lists_at_most_max_errors_problems():
    records = [{"ocid": f"o{i}", "releases": [{"url": f"https://x.org/{i}"}]} for i in range(80)]
    page = read(json.dumps({"records": records}).encode())
    assert len(page.errors) == ocds.MAX_ERRORS + 1
    assert page.errors["errors"] == "110 more problems not listed"  # two for each record


def test_read_error_status_is_a_response_error():
    page = read(package(tender_release()), status=503)
    assert page.records == []
    assert page.errors == {"response": "HTTP 503: not an OCDS package"}


def test_read_past_the_deadline_names_the_release():
    body = package(*(release(f"r{i}", "2026-03-02T00:00:00Z", ocid=f"o{i}") for i in range(5)))
    steps: list[str] = []
    page = read(body, deadline=time.monotonic() - 1, on_step=steps.append)
    assert page.timeout == "response"
    assert page.records == []
    page = read(body, deadline=time.monotonic() + 60, on_step=steps.append)
    assert page.timeout is None
    assert "releases[4]" in steps
    assert len(page.records) == 5


def test_read_through_kinds_dispatch():
    parsed = kinds.rules_parse("ocds", {})
    assert kinds.kind_of(parsed) == "ocds"
    page = kinds.read(package(tender_release()), rules=parsed, url=FEED, request=Request(FEED))
    assert [r.key for r in page.records] == [OCID]


# Stored: one bid, revisions in date order


def stored_items(page, url: str = FEED) -> list[Item]:
    """Items of a page's records as the engine stores them (see the design's "items")."""
    return [
        Item(
            url=record.url or f"{url.partition('?')[0]}#{record.key}",
            url_hash=item_hash(record.key),
            fields=record.fields,
            content_hash=urls.content_hash(record.fields),
            version=record.version,
            partial=record.partial,
        )
        for record in page.records
    ]


@pytest.mark.django_db
def test_store_three_releases_make_one_bid_with_two_revisions(workspace_a):
    source = Source.objects.create(
        workspace=workspace_a, name="OCDS feed", start_urls=[FEED], rules={}, kind="ocds"
    )
    crawl = Crawl.objects.create(workspace=workspace_a, source=source)
    amended = release(f"{OCID}-amend-2", "2026-03-10T09:00:00Z", value={"amount": 1400000})
    cancelled = release(
        f"{OCID}-cancel-3", "2026-03-20T09:00:00Z", tag=("tenderCancellation",), status="cancelled"
    )
    body = package(cancelled, tender_release(), amended)  # out of order on purpose

    def store() -> list[int]:
        page = read(body)
        assert page.errors == {}
        result = bids_store(
            crawl_id=crawl.pk,
            source_id=source.pk,
            workspace_id=workspace_a.pk,
            items=stored_items(page),
            now=timezone.now(),
        )
        return result.new + result.changed

    [bid_id] = store()
    bid = Bid.objects.get(pk=bid_id)
    assert Bid.objects.filter(source=source).count() == 1
    assert bid.status == Bid.Status.CANCELLED
    assert bid.title == "Road resurfacing, phase 2"
    assert bid.amount == Decimal(1400000)
    assert bid.currency == "GBP"
    assert bid.reference == "T-2026-001"
    assert bid.classifications == ["CPV:45233142", "CPV:45233220"]
    assert bid.version == f"2026-03-20T09:00:00.000000Z|{OCID}-cancel-3"
    revisions = list(BidRevision.objects.filter(bid=bid).order_by("id"))
    assert [r.changes["extra.release_id"] for r in revisions] == [
        [f"{OCID}-tender-1", f"{OCID}-amend-2"],
        [f"{OCID}-amend-2", f"{OCID}-cancel-3"],
    ]
    assert revisions[0].changes["amount"] == ["1250000.5", "1400000"]
    assert revisions[1].changes["status"] == ["active", "cancelled"]

    # The same package again changes nothing: no new revision, the bid as it was.
    snapshot = copy.deepcopy(
        Bid.objects.filter(pk=bid.pk).values("status", "amount", "version", "extra").get()
    )
    assert store() == []
    assert BidRevision.objects.filter(bid=bid).count() == 2
    assert Bid.objects.filter(pk=bid.pk).values("status", "amount", "version", "extra").get() == (
        snapshot
    )


def test_read_in_the_sandbox_child():
    box = sandbox.Sandbox()
    try:
        page = box.extract(
            package(tender_release()),
            url=FEED,
            rules=RULES,
            budget=30,
            kill_after=30,
            request=Request(FEED),
        )
    finally:
        box.close()
    assert page.errors == {}
    [record] = page.records
    assert (record.key, record.fields["amount"]) == (OCID, Decimal("1250000.50"))
