"""Importing bids (docs/imports.md): POST /api/v1/sources/{id}/import/, the dashboard form and
`manage.py import_bids`, through one service (crawls.services.imports)."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from analytics import services as analytics_services
from analytics.models import DepartmentDay
from crawls import events, services
from crawls.engine import urls
from crawls.engine.request import item_hash
from crawls.models import Bid, BidRevision, Crawl, CrawlEvent, ImportJob
from crawls.services import imports
from tests import factories
from tests.clients import API, assert_invalid, error_of
from tests.processes import wait_until

HEADER = "url,title,department,amount,currency,post_date,deadline,status,classifications,memo\n"
ROW = (
    'https://bids.example.org/n/{n},도로 포장 공사 {n},서울시 도로과,"1,234,500",KRW,'
    "2026-03-0{d},2026-03-20 18:00,공고중,CPV:45233140,note {n}\n"
)


def csv_bytes(count: int = 3, *, encoding: str = "utf-8", extra: str = "") -> bytes:
    rows = "".join(ROW.format(n=n, d=1 + n % 9) for n in range(1, count + 1))
    return (HEADER + rows + extra).encode(encoding)


def upload(client, source, data: bytes, name: str = "bids.csv", **fields):
    file = SimpleUploadedFile(name, data, content_type="application/octet-stream")
    return client.post(
        f"{API}/sources/{source.pk}/import/", {"file": file, **fields}, format="multipart"
    )


def bid_of(source, url: str) -> Bid:
    return Bid.objects.get(source=source, url_hash=urls.url_hash(urls.canonicalize(url)))


@pytest.mark.django_db
def test_import_csv_stores_typed_bids_through_a_crawl_of_its_own(api, owner, source_a):
    response = upload(api(owner), source_a, csv_bytes(3))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "succeeded"
    assert (body["rows_total"], body["rows_done"], body["items_new"]) == (3, 3, 3)
    assert response["Location"].endswith(f"/api/v1/imports/{body['id']}/")
    bid = bid_of(source_a, "https://bids.example.org/n/2")
    assert bid.workspace_id == source_a.workspace_id
    assert (bid.title, bid.department) == ("도로 포장 공사 2", "서울시 도로과")
    assert (bid.amount, bid.currency, bid.status) == (Decimal("1234500"), "KRW", "active")
    assert bid.post_date == dt.date(2026, 3, 3)
    assert bid.deadline == dt.datetime(2026, 3, 20, 9, 0, tzinfo=dt.UTC)  # Seoul, 18:00
    assert bid.classifications == ["CPV:45233140"]
    assert bid.extra == {"memo": "note 2"}
    crawl = Crawl.objects.get(pk=body["crawl"])
    assert (crawl.status, crawl.items_new, crawl.source_id) == ("succeeded", 3, source_a.pk)
    assert bid.first_crawl_id == crawl.pk
    types = list(CrawlEvent.objects.filter(crawl=crawl).values_list("type", flat=True))
    assert types == [events.STARTED, events.ITEMS, events.SUCCEEDED]
    items = CrawlEvent.objects.get(crawl=crawl, type=events.ITEMS).payload
    assert sorted(items["new"]) == sorted(
        Bid.objects.filter(source=source_a).values_list("pk", flat=True)
    )


@pytest.mark.django_db
def test_an_imports_crawl_ends_with_the_final_figures_crawl_rebuild_folds(api, owner, source_a):
    """The import's final event carries what every final event does (lifecycle's figures), so
    its crawl's row is rebuilt from the log like any other's."""
    body = upload(api(owner), source_a, csv_bytes(3)).json()
    comparison = services.crawl_rebuild(crawl_id=body["crawl"])
    assert comparison.differences == {}
    assert {"status", "finished_at", "quality", "items_new", "errors"} <= set(comparison.compared)


@pytest.mark.django_db
def test_import_reports_bad_rows_by_line_and_stores_the_others(api, owner, source_a):
    extra = (
        "https://bids.example.org/n/9,Bad amount,,lots,,,,,,\n"
        '"https://bids.example.org/n/10","Two\nlines",,5,,,,,,\n'
        "https://bids.example.org/n/11,Too few\n"
        ",No identity,,,,,,,,\n"
        "https://bids.example.org/n/12,Bad currency,,1,XQZ,,,,,\n"
    )
    response = upload(api(owner), source_a, csv_bytes(2, extra=extra))
    body = response.json()
    assert response.status_code == 201, body
    assert (body["rows_done"], body["rows_failed"], body["items_new"]) == (7, 4, 3)
    found = [(e["line"], e["field"]) for e in body["errors"]]
    assert found == [(4, "amount"), (7, ""), (8, "url"), (9, "currency")]
    assert "lots" in body["errors"][0]["message"]
    assert bid_of(source_a, "https://bids.example.org/n/10").title == "Two lines"


@pytest.mark.django_db
def test_import_again_changes_nothing_and_a_changed_row_is_a_revision(api, owner, source_a):
    client = api(owner)
    first = upload(client, source_a, csv_bytes(3)).json()
    again = upload(client, source_a, csv_bytes(3)).json()
    assert (again["items_new"], again["items_changed"], again["items_unchanged"]) == (0, 0, 3)
    assert not BidRevision.objects.exists()
    assert Bid.objects.filter(source=source_a).count() == 3
    assert not CrawlEvent.objects.filter(crawl_id=again["crawl"], type=events.ITEMS).exists()
    changed = csv_bytes(3).replace(b'"1,234,500",KRW,2026-03-03', b'"2,000,000",KRW,2026-03-03')
    third = upload(client, source_a, changed).json()
    assert (third["items_new"], third["items_changed"], third["items_unchanged"]) == (0, 1, 2)
    bid = bid_of(source_a, "https://bids.example.org/n/2")
    revision = BidRevision.objects.get()
    assert (revision.bid_id, revision.crawl_id) == (bid.pk, third["crawl"])
    assert revision.changes == {"amount": ["1234500", "2000000"]}
    assert bid.first_crawl_id == first["crawl"]


@pytest.mark.django_db
def test_import_jsonl_keys_rows_without_url_by_reference(api, owner, source_a):
    lines = [
        {"reference": "R-1", "title": "Bridge repair", "views": 12, "amount": 5000.5},
        {"reference": "R-2", "title": "School roof", "status": "cancelled", "tags": ["a", "b"]},
        {"title": "No key"},
    ]
    data = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines).encode()
    body = upload(api(owner), source_a, data, "bids.jsonl").json()
    assert (body["format"], body["items_new"], body["rows_failed"]) == ("jsonl", 2, 1)
    assert body["errors"] == [
        {"line": 3, "field": "url", "message": "a row needs a url or a reference"}
    ]
    bid = Bid.objects.get(source=source_a, url_hash=item_hash("R-1"))
    assert (bid.views, bid.amount, bid.reference) == (12, Decimal("5000.50"), "R-1")
    assert bid.url == f"{factories.START}#R-1"
    second = Bid.objects.get(source=source_a, url_hash=item_hash("R-2"))
    assert (second.status, second.extra) == ("cancelled", {"tags": ["a", "b"]})
    # A row naming fewer fields leaves the others as stored (no revision of them).
    data = json.dumps({"reference": "R-1", "title": "Bridge repair", "views": 13}).encode()
    body = upload(api(owner), source_a, data, "more.jsonl").json()
    assert body["items_changed"] == 1
    bid.refresh_from_db()
    assert (bid.views, bid.amount) == (13, Decimal("5000.50"))
    assert BidRevision.objects.get().changes == {"views": [12, 13]}


def release(rid: str, date: str, **tender) -> dict:
    return {"ocid": "ocds-abc-1", "id": rid, "date": date, "tag": ["tender"], "tender": tender}


@pytest.mark.django_db
def test_import_ocds_release_package_applies_releases_in_date_order(api, owner, source_a):
    package = {
        "uri": "https://example.org/package.json",
        "releases": [
            release("2", "2026-02-02T00:00:00Z", value={"amount": 900, "currency": "EUR"}),
            release("1", "2026-02-01T00:00:00Z", id="T-1", title="Harbour dredging",
                    value={"amount": 800, "currency": "EUR"}),
            "not a release",
        ],
    }  # fmt: skip
    body = upload(api(owner), source_a, json.dumps(package).encode(), "package.json").json()
    assert (body["format"], body["rows_done"], body["rows_failed"]) == ("ocds", 3, 1)
    assert body["errors"] == [
        {"line": 3, "field": "", "message": "a release must be a JSON object"}
    ]
    bid = Bid.objects.get(source=source_a, url_hash=item_hash("ocds-abc-1"))
    assert (bid.title, bid.reference, bid.amount) == ("Harbour dredging", "T-1", Decimal(900))
    assert bid.version.endswith("|2")
    assert BidRevision.objects.get(bid=bid).changes["amount"] == ["800", "900"]
    again = upload(api(owner), source_a, json.dumps(package).encode(), "package.json").json()
    assert (again["items_new"], again["items_changed"]) == (0, 0)
    assert BidRevision.objects.count() == 1


@pytest.mark.django_db
def test_import_ocds_record_package_uses_the_compiled_release(api, owner, source_a):
    compiled = release("c", "2026-02-03T00:00:00Z", id="T-9", title="Compiled")
    package = {"records": [{"ocid": "ocds-abc-1", "compiledRelease": compiled}]}
    body = upload(api(owner), source_a, json.dumps(package).encode(), "records.json").json()
    assert body["items_new"] == 1
    assert Bid.objects.get(source=source_a).title == "Compiled"


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["cp949", "euc-kr", "utf-8-sig", "utf-16"])
def test_import_reads_korean_encodings(api, owner, source_a, encoding):
    declared = {"encoding": "utf-16"} if encoding == "utf-16" else {}  # no sniffing for it
    response = upload(api(owner), source_a, csv_bytes(2, encoding=encoding), **declared)
    body = response.json()
    assert response.status_code == 201, body
    assert body["items_new"] == 2
    assert bid_of(source_a, "https://bids.example.org/n/1").title == "도로 포장 공사 1"


@pytest.mark.django_db
def test_import_refuses_a_file_over_the_size_limit_with_413(api, owner, source_a, settings):
    settings.IMPORT_MAX_BYTES = 100
    response = upload(api(owner), source_a, csv_bytes(5))
    assert response.status_code == 413
    assert error_of(response)["details"] == {"file": ["the file is larger than 100 bytes"]}
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_import_refuses_a_body_over_the_size_limit_before_reading_it(
    api, owner, source_a, settings
):
    settings.IMPORT_MAX_BYTES = 10
    big = b"x" * (200 * 1024)
    response = upload(api(owner), source_a, big)
    assert response.status_code == 413
    assert "file" in error_of(response)["details"]


@pytest.mark.django_db
def test_import_refuses_more_rows_than_the_limit_with_400(api, owner, source_a, settings):
    settings.IMPORT_MAX_ROWS = 4
    response = upload(api(owner), source_a, csv_bytes(5))
    assert_invalid(response, "file")
    assert "more than 4 records" in error_of(response)["message"]
    assert not Bid.objects.exists()
    assert upload(api(owner), source_a, csv_bytes(4)).status_code == 201


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "name", "fields", "field"),
    [
        (b"title,amount\nx,1\n", "bids.csv", {}, "file"),  # no url or reference column
        (b"", "bids.csv", {}, "file"),
        (b"url,title\nhttps://e.org/1,x\n", "bids.txt", {}, "format"),
        (b"url,title\nhttps://e.org/1,x\n", "bids.csv", {"format": "xls"}, "format"),
        (b"url,title\nhttps://e.org/1,x\n", "bids.csv", {"encoding": "klingon"}, "encoding"),
        (b'url,title\nhttps://e.org/1,\xff\xfe\xfa"x\n' * 3, "bids.csv", {"encoding": "utf-8"},
         "encoding"),
        (b'{"uri": "x"}', "package.json", {}, "file"),  # neither releases nor records
        (b'{"releases": [{"ocid": "a"}, ', "package.json", {}, "file"),  # cut short
    ],
)  # fmt: skip
def test_import_refuses_an_unreadable_file_naming_the_field(
    api, owner, source_a, data, name, fields, field
):
    assert_invalid(upload(api(owner), source_a, data, name, **fields), field)
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_import_into_another_workspaces_source_is_404(api, owner, source_b):
    response = upload(api(owner), source_b, csv_bytes(1))
    assert response.status_code == 404
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_import_by_a_viewer_is_403_and_a_member_may(api, viewer, teammate, source_a):
    assert upload(api(viewer), source_a, csv_bytes(1)).status_code == 403
    assert upload(api(teammate), source_a, csv_bytes(1)).status_code == 201


@pytest.mark.django_db
def test_import_jobs_are_listed_within_the_callers_workspaces(api, owner, outsider, source_a):
    job = upload(api(owner), source_a, csv_bytes(1)).json()
    assert [row["id"] for row in api(owner).get(f"{API}/imports/").json()["results"]] == [job["id"]]
    assert api(outsider).get(f"{API}/imports/").json()["results"] == []
    assert api(outsider).get(f"{API}/imports/{job['id']}/").status_code == 404


@pytest.mark.django_db
def test_import_survives_hostile_rows(api, owner, source_a, settings):
    settings.IMPORT_MAX_LINE_CHARS = 5000
    huge = "https://bids.example.org/n/7," + "x" * 100_000 + ",,,,,,,,\n"
    body = upload(api(owner), source_a, csv_bytes(2, extra=huge + ROW.format(n=8, d=8))).json()
    assert (body["items_new"], body["rows_failed"]) == (3, 1)
    assert body["errors"][0]["line"] == 4
    assert "longer than 5000" in body["errors"][0]["message"]
    deep = "[" * 1000 + "]" * 1000
    lines = f'{{"reference": "A", "title": "ok"}}\n{{"reference": "B", "x": {deep}}}\n{deep}\n'
    body = upload(api(owner), source_a, lines.encode(), "deep.jsonl").json()
    assert body["items_new"] == 1
    assert [(e["line"], "deeper than" in e["message"]) for e in body["errors"]] == [
        (2, True), (3, True),
    ]  # fmt: skip
    package = b'{"releases": [' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"]}"
    assert_invalid(upload(api(owner), source_a, package, "deep.json"), "file")


@pytest.mark.django_db
def test_import_caps_the_errors_it_keeps(api, owner, source_a, settings):
    settings.IMPORT_MAX_ERRORS = 2
    bad = "".join(f"https://bids.example.org/b/{n},,,,,,,,,\n" for n in range(5))
    body = upload(api(owner), source_a, csv_bytes(1, extra=bad)).json()
    assert (body["rows_failed"], len(body["errors"])) == (5, 2)


@pytest.mark.django_db(transaction=True)
def test_import_of_a_large_file_is_a_job_a_worker_runs(
    api, owner, source_a, settings, celery_worker
):
    settings.IMPORT_SYNC_MAX_ROWS = 10
    response = upload(api(owner), source_a, csv_bytes(25))
    assert response.status_code == 202, response.content
    url = response["Location"]
    assert response.json()["status"] == "queued"
    client = api(owner)
    wait_until(
        lambda: client.get(url).json()["status"] in ("succeeded", "failed"),
        what="the import job",
        timeout=60,
    )
    body = client.get(url).json()
    assert (body["status"], body["rows_done"], body["items_new"]) == ("succeeded", 25, 25)
    assert Bid.objects.filter(source=source_a).count() == 25
    assert not list(settings.IMPORT_DIR.glob(f"{body['id']}-*"))  # the kept file is removed


@pytest.mark.django_db
def test_import_bids_command_prints_progress_and_a_summary(source_a, tmp_path, settings):
    settings.IMPORT_BATCH = 2
    path = tmp_path / "bids.csv"
    path.write_bytes(csv_bytes(5, encoding="cp949"))
    out = io.StringIO()
    call_command("import_bids", str(source_a.pk), str(path), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("importing 5 records of bids.csv (csv, cp949)")
    assert "  2/5 (40%)" in lines
    assert lines[-1].startswith("succeeded: 5 records in")
    assert "5 new, 0 changed, 0 unchanged, 0 failed" in lines[-1]
    assert Bid.objects.filter(source=source_a).count() == 5


@pytest.mark.django_db
def test_import_bids_command_refuses_over_the_row_limit_with_exit_code_2(
    source_a, tmp_path, settings
):
    settings.IMPORT_MAX_ROWS = 2
    path = tmp_path / "bids.csv"
    path.write_bytes(csv_bytes(3))
    with pytest.raises(CommandError, match="more than 2 records") as raised:
        call_command("import_bids", str(source_a.pk), str(path))
    assert raised.value.returncode == 2
    assert not Bid.objects.exists()


@pytest.mark.django_db
def test_dashboard_import_form_imports_and_shows_the_job(client, owner, viewer, source_a):
    client.force_login(owner)
    page = client.get(f"/sources/{source_a.pk}/import/")
    assert page.status_code == 200
    assert b'enctype="multipart/form-data"' in page.content
    file = SimpleUploadedFile("bids.csv", csv_bytes(2, extra=",x,,,,,,,,\n"))
    response = client.post(f"/sources/{source_a.pk}/import/", {"file": file})
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/imports/{job.pk}/"
    shown = client.get(response["Location"])
    text = shown.content.decode()
    assert "Succeeded" in text
    assert '<td data-field="new">2</td>' in text
    assert "<td>4</td><td>url</td>" in text
    bad = client.post(
        f"/sources/{source_a.pk}/import/", {"file": SimpleUploadedFile("a.txt", b"x")}
    )
    assert bad.status_code == 400
    assert b"cannot tell the format" in bad.content
    client.force_login(viewer)
    assert client.get(f"/sources/{source_a.pk}/import/").status_code == 403


@pytest.mark.django_db
def test_import_whose_file_is_gone_ends_failed_with_its_crawl(owner, source_a, sent_tasks):
    job = imports.import_create(
        source=source_a, user=owner, raw=io.BytesIO(csv_bytes(3)), filename="bids.csv",
        size=len(csv_bytes(3)), keep=True,
    )  # fmt: skip
    assert job.path
    Path(job.path).unlink()
    ran = imports.import_run(job_id=job.pk)
    assert ran is not None
    assert (ran.status, ran.rows_done) == ("failed", 0)
    assert "No such file" in ran.error
    assert ran.crawl.status == Crawl.Status.FAILED
    assert CrawlEvent.objects.filter(crawl=ran.crawl, type=events.FAILED).exists()
    assert imports.import_run(job_id=job.pk) is None  # ended: nobody runs it again
    assert not Bid.objects.exists()


def _run(source, data: bytes, captured):
    """Import `data` in this process with the commit callbacks (the subscribers) run."""
    with captured(execute=True):
        job = imports.import_create(
            source=source, user=None, raw=io.BytesIO(data), filename="bids.csv",
            size=len(data), keep=False,
        )  # fmt: skip
        return imports.import_run(job_id=job.pk, raw=io.BytesIO(data))


def _read_model(workspace_id: int) -> list[tuple]:
    return list(
        DepartmentDay.objects.filter(workspace_id=workspace_id)
        .order_by("source_id", "department", "day")
        .values_list("source_id", "department", "day", "bid_count", "total_amount", "max_views")
    )


@pytest.mark.django_db
def test_analytics_counts_an_import_once_at_its_end_equal_to_a_rebuild(
    source_a, settings, django_capture_on_commit_callbacks
):
    settings.IMPORT_BATCH = 2  # several batches, each with its crawl.items event
    job = _run(source_a, csv_bytes(7), django_capture_on_commit_callbacks)
    assert (job.status, job.items_new) == ("succeeded", 7)
    items = CrawlEvent.objects.filter(crawl=job.crawl, type=events.ITEMS)
    assert items.count() == 4
    assert all(event.payload["import"] == job.pk for event in items)
    counted = _read_model(source_a.workspace_id)
    assert sum(row[3] for row in counted) == 7
    analytics_services.summary_rebuild(workspace_ids=[source_a.workspace_id])
    assert _read_model(source_a.workspace_id) == counted
    # A re-import that moves a bid to another department and day: the old key loses it.
    old_key = '서울시 도로과,"1,234,500",KRW,2026-03-03'.encode()
    moved = csv_bytes(7).replace(old_key, b'Other office,"1,234,500",KRW,2026-04-03')
    assert moved != csv_bytes(7)
    again = _run(source_a, moved, django_capture_on_commit_callbacks)
    assert (again.items_new, again.items_changed, again.items_unchanged) == (0, 1, 6)
    counted = _read_model(source_a.workspace_id)
    assert ("Other office", dt.date(2026, 4, 3), 1) in [(r[1], r[2], r[3]) for r in counted]
    analytics_services.summary_rebuild(workspace_ids=[source_a.workspace_id])
    assert _read_model(source_a.workspace_id) == counted


@pytest.mark.django_db
def test_import_again_leaves_unchanged_bids_as_they_are_and_revives_removed_ones(
    source_a, django_capture_on_commit_callbacks
):
    first = _run(source_a, csv_bytes(3), django_capture_on_commit_callbacks)
    removed = bid_of(source_a, "https://bids.example.org/n/1")
    Bid.objects.filter(pk=removed.pk).update(missed_crawls=2, removed_at=removed.last_seen_at)
    missed = bid_of(source_a, "https://bids.example.org/n/2")
    Bid.objects.filter(pk=missed.pk).update(missed_crawls=1)
    untouched = bid_of(source_a, "https://bids.example.org/n/3")
    again = _run(source_a, csv_bytes(3), django_capture_on_commit_callbacks)
    assert (again.items_new, again.items_changed, again.items_unchanged) == (0, 1, 2)
    removed.refresh_from_db()
    assert (removed.removed_at, removed.missed_crawls) == (None, 0)
    revision = BidRevision.objects.get(bid=removed)
    assert (revision.crawl_id, revision.changes) == (again.crawl_id, {"removed": [True, False]})
    missed.refresh_from_db()
    assert missed.missed_crawls == 0
    for bid in (missed, untouched):
        fresh = Bid.objects.get(pk=bid.pk)
        assert (fresh.last_crawl_id, fresh.last_seen_at) == (first.crawl_id, bid.last_seen_at)


@pytest.mark.django_db
def test_import_of_title_and_url_only_stores_empty_fields(source_a):
    data = b"url,title\nhttps://bids.example.org/a,Only a title\nhttps://bids.example.org/b,B\n"
    job = imports.import_create(
        source=source_a, user=None, raw=io.BytesIO(data), filename="bids.csv", size=len(data),
        keep=False,
    )  # fmt: skip
    job = imports.import_run(job_id=job.pk, raw=io.BytesIO(data))
    assert (job.status, job.items_new) == ("succeeded", 2)
    bid = bid_of(source_a, "https://bids.example.org/a")
    assert (bid.title, bid.amount, bid.views, bid.post_date, bid.deadline) == (
        "Only a title",
        None,
        None,
        None,
        None,
    )
    assert (bid.department, bid.classifications) == ("", [])


@pytest.mark.django_db
def test_an_error_while_reading_fails_the_import_and_stops_the_reader(owner, source_a):
    good = csv_bytes(3)
    job = imports.import_create(
        source=source_a, user=owner, raw=io.BytesIO(good), filename="bids.csv", size=len(good),
        keep=True,
    )  # fmt: skip
    # The kept file no longer decodes as the check found it (UTF-8) after its first rows.
    Path(job.path).write_bytes(good + b"https://bids.example.org/n/9,\xff\xfe bad,,,,,,,,\n")
    ran = imports.import_run(job_id=job.pk)
    assert ran is not None
    assert ran.status == "failed"
    assert "utf-8" in ran.error.lower()
    assert ran.crawl.status == Crawl.Status.FAILED
    assert not [t for t in threading.enumerate() if t.name.startswith(f"import-{job.pk}-")]
