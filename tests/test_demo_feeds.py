"""The demo board's JSON API, XML service, OCDS feed and eGov POST-form board, over HTTP against
the session's real board server: paging to the end, the wrong-key envelopes, POST-only views,
epochs that amend and cancel, flaky pages, conditional GET, determinism, and the expected-data
helpers agreeing with what the endpoints serve when read by the demo rules' own paths."""

import hashlib
import itertools
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from datetime import date, datetime
from decimal import Decimal
from urllib.parse import urlencode, urljoin
from zoneinfo import ZoneInfo

import jmespath
import pytest
from lxml import etree
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from crawls.demo import board as demo
from crawls.demo import egov, feeds
from crawls.demo.board import (
    API_PATH,
    BBS_ID,
    DEMO_API_KEY,
    DEMO_EGOV_RULES,
    DEMO_JSON_RULES,
    DEMO_SERVICE_KEY,
    DEMO_XML_RULES,
    EGOV_LIST_PATH,
    EGOV_VIEW_PATH,
    OCDS_RECORDS_PATH,
    OCDS_RELEASES_PATH,
    XML_PATH,
    BoardConfig,
    expected_feed_bids,
    expected_ocds_bids,
    tenders,
)
from crawls.engine import kinds
from crawls.models import Source
from crawls.services import demo_source_ensure
from tests.processes import BASE_DIR

SEOUL = ZoneInfo("Asia/Seoul")
KEY = {"X-Api-Key": DEMO_API_KEY}


def call(url, *, method="GET", headers=None, form=None):
    """(status, headers, body) of one request to the board."""
    data = urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our board
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def fetch(url, **kw):
    """A 200 answer, asking once more after a flaky page's one 500."""
    status, headers, body = call(url, **kw)
    if status == 500:
        status, headers, body = call(url, **kw)
    assert status == 200, (url, status, body[:300])
    return headers, body


def set_epoch(board, epoch):
    status, _, _ = call(f"{board.base_url}/_control/epoch?set={epoch}")
    assert status == 200


def convert(value, spec):
    """A field's value as the rules' spec reads it (type, formats, regex, map)."""
    if isinstance(spec, str):
        return value
    if "regex" in spec:
        value = re.search(spec["regex"], value).group(0)
    kind = spec.get("type", "text")
    if kind == "int":
        return int(str(value).replace(",", ""))
    if kind == "decimal":
        return Decimal(str(value).replace(",", ""))
    if kind in ("date", "datetime"):
        parsed = datetime.strptime(value, spec["formats"][0])  # noqa: DTZ007 - zone below
        if kind == "date":
            return parsed.date()
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=SEOUL)
    return spec.get("map", {}).get(value, value)


def path_of(spec):
    return spec if isinstance(spec, str) else spec.get("path") or spec.get("css")


# --- JSON API -------------------------------------------------------------------------------------


def read_json_page(body, rules=DEMO_JSON_RULES):
    page = json.loads(body)
    records = {}
    for item in jmespath.search(rules["items"], page):
        fields = rules["fields"]
        values = {name: convert(jmespath.search(path_of(s), item), s) for name, s in fields.items()}
        records[jmespath.search(rules["key"], item)] = values
    return page, records


@pytest.mark.parametrize(
    ("first", "headers"),
    [
        (f"{API_PATH}?page=1&per_page=7", KEY),
        (f"{API_PATH}?offset=0&limit=7", KEY),
        (f"{API_PATH}?limit=7&api_key={DEMO_API_KEY}", {}),  # a cursor from the second page on
    ],
)
def test_api_pages_to_the_end_with_the_expected_notices(board, first, headers):
    expected = expected_feed_bids(board.config)
    url, seen, pages = f"{board.base_url}{first}", {}, 0
    while url:
        response_headers, body = fetch(url, headers=headers)
        page, records = read_json_page(body)
        pages += 1
        assert page["meta"]["total"] == len(expected)
        assert response_headers["Content-Type"].startswith("application/json")
        next_url = page["links"]["next"]
        if next_url:
            assert response_headers["Link"] == f'<{next_url}>; rel="next"'
            assert page["meta"]["next_cursor"]
            if "api_key" in first:  # the cursor style keeps its key in the query
                next_url = f"{board.base_url}{API_PATH}?cursor={page['meta']['next_cursor']}"
                next_url += f"&limit=7&api_key={DEMO_API_KEY}"
        else:
            assert "Link" not in response_headers
        seen.update(records)
        url = next_url
    assert pages == -(-len(expected) // 7)
    assert list(seen) == list(expected)  # newest first, each once
    assert seen == expected
    assert {v["status"] for v in seen.values()} == {"active"}
    assert {v["currency"] for v in seen.values()} == {"KRW"}


def test_api_items_carry_the_apis_own_names_and_types(board):
    _, body = fetch(f"{board.base_url}{API_PATH}?per_page=1", headers=KEY)
    item = json.loads(body)["data"][0]
    newest = tenders(board.config)[0].notice
    assert item == {
        "id": newest.id,
        "notice_no": newest.reference,
        "title": newest.title,
        "agency": newest.department,
        "views": newest.views,
        "amount": int(newest.amount),
        "currency": "KRW",
        "posted_on": newest.post_date.isoformat(),
        "closes_at": newest.deadline.isoformat(),
        "status": "open",
        "url": f"{board.base_url}/notices/{newest.id}",
    }


@pytest.mark.parametrize(
    "headers_and_query",
    [({}, ""), ({"X-Api-Key": "wrong"}, ""), ({}, "?api_key=wrong"), ({"X-Api-Key": ""}, "")],
)
def test_api_refuses_a_missing_or_wrong_key_with_its_envelope(board, headers_and_query):
    headers, query = headers_and_query
    status, _, body = call(f"{board.base_url}{API_PATH}{query}", headers=headers)
    assert status == 401
    error = json.loads(body)["error"]
    assert error["code"] == "INVALID_KEY"
    assert error["message"]
    # What the JSON rules' error paths read off it.
    assert jmespath.search(DEMO_JSON_RULES["error"]["when"], json.loads(body)) == "INVALID_KEY"


@pytest.mark.parametrize("query", ["per_page=0", "per_page=101", "page=x", "cursor=%21%21"])
def test_api_refuses_bad_parameters(board, query):
    status, _, body = call(f"{board.base_url}{API_PATH}?{query}", headers=KEY)
    assert status == 400
    assert json.loads(body)["error"]["code"] == "INVALID_PARAMETER"


# --- XML service ----------------------------------------------------------------------------------


def xml_value(node, path):
    found = node.xpath(path)
    return (found[0].text or "") if found else None


def read_xml_page(body, rules=DEMO_XML_RULES):
    root = etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    error = rules["error"]
    code = xml_value(root, error["when"])
    if code not in error["ok"]:
        return root, xml_value(root, error["message"]), {}
    records = {}
    for item in root.xpath(rules["items"]):
        values = {n: convert(xml_value(item, path_of(s)), s) for n, s in rules["fields"].items()}
        records[xml_value(item, rules["key"])] = values
    return root, None, records


def test_xml_service_pages_to_the_end_with_the_expected_notices(board):
    expected = expected_feed_bids(board.config)
    seen, page = {}, 1
    while True:
        query = urlencode({"serviceKey": DEMO_SERVICE_KEY, "pageNo": page, "numOfRows": 15})
        headers, body = fetch(f"{board.base_url}{XML_PATH}?{query}")
        assert headers["Content-Type"] == "text/xml;charset=UTF-8"
        root, error, records = read_xml_page(body)
        assert error is None
        assert xml_value(root, "/response/header/resultMsg") == "NORMAL SERVICE."
        assert int(xml_value(root, DEMO_XML_RULES["pagination"]["total"])) == len(expected)
        assert xml_value(root, "/response/body/pageNo") == str(page)
        if not records:
            break
        seen.update(records)
        page += 1
    assert page == -(-len(expected) // 15) + 1  # the page after the last is empty
    assert list(seen) == list(expected)
    assert seen == expected


@pytest.mark.parametrize("key", ["", "wrong", DEMO_SERVICE_KEY + "x"])
def test_xml_service_answers_a_wrong_key_with_200_and_its_error_envelope(board, key):
    query = urlencode({"serviceKey": key, "pageNo": 1, "numOfRows": 10})
    status, headers, body = call(f"{board.base_url}{XML_PATH}?{query}")
    assert status == 200
    assert headers["Content-Type"] == "text/xml;charset=UTF-8"
    root, error, records = read_xml_page(body)
    assert root.tag == "OpenAPI_ServiceResponse"
    assert xml_value(root, "cmmMsgHeader/errMsg") == "SERVICE ERROR"
    assert xml_value(root, "cmmMsgHeader/returnReasonCode") == "30"
    assert error == "SERVICE_KEY_IS_NOT_REGISTERED_ERROR"
    assert records == {}


def test_xml_service_refuses_bad_parameters_with_code_10(board):
    query = urlencode({"serviceKey": DEMO_SERVICE_KEY, "numOfRows": "many"})
    status, _, body = call(f"{board.base_url}{XML_PATH}?{query}")
    assert status == 200
    _, error, _ = read_xml_page(body)
    assert error == "INVALID_REQUEST_PARAMETER_ERROR"


# --- OCDS -----------------------------------------------------------------------------------------


def ocds_pages(board, path):
    url, packages = f"{board.base_url}{path}", []
    while url:
        _, body = fetch(url)
        package = json.loads(body)
        packages.append(package)
        url = package["links"].get("next")
    return packages


def check_release(release):
    assert release["ocid"].startswith("ocds-demo01-")
    assert release["initiationType"] == "tender"
    tender = release["tender"]
    assert set(tender) >= {"id", "title", "status", "value", "datePublished", "tenderPeriod"}
    assert tender["value"]["currency"] == "KRW"
    assert tender["procurementMethod"] in ("open", "selective")
    assert tender["items"][0]["classification"]["scheme"] == "CPV"
    assert release["buyer"]["name"]


def bid_of(releases):
    """A bid as the design maps an ocid's releases (the latest release's values)."""
    latest = max(releases, key=lambda r: r["date"])
    tender = latest["tender"]
    cancelled = any("tenderCancellation" in r["tag"] for r in releases)
    return {
        "title": tender["title"],
        "department": latest["buyer"]["name"],
        "reference": tender["id"],
        "amount": Decimal(tender["value"]["amount"]),
        "post_date": datetime.fromisoformat(tender["datePublished"]).date(),
        "deadline": datetime.fromisoformat(tender["tenderPeriod"]["endDate"]),
        "currency": tender["value"]["currency"],
        "status": "cancelled" if cancelled or tender["status"] == "cancelled" else "active",
        "procurement_method": tender["procurementMethod"],
        "classifications": [f"CPV:{i['classification']['id']}" for i in tender["items"]],
    }


def releases_by_ocid(packages):
    result = {}
    for package in packages:
        assert package["version"] == "1.1"
        assert package["publisher"]["name"]
        assert package["uri"].startswith("http")
        for release in package["releases"]:
            check_release(release)
            result.setdefault(release["ocid"], []).append(release)
    return result


def test_ocds_release_feed_pages_to_the_end_with_one_release_per_tender(board):
    packages = ocds_pages(board, OCDS_RELEASES_PATH)
    expected = expected_ocds_bids(board.config)
    assert len(packages) == -(-len(expected) // board.config.per_page)
    by_ocid = releases_by_ocid(packages)
    assert all(len(r) == 1 and r[0]["tag"] == ["tender"] for r in by_ocid.values())
    assert {ocid: bid_of(r) for ocid, r in by_ocid.items()} == expected


def test_ocds_epochs_amend_and_cancel_in_later_releases(board):
    set_epoch(board, 4)
    by_ocid = releases_by_ocid(ocds_pages(board, OCDS_RELEASES_PATH))
    expected = expected_ocds_bids(board.config, epoch=4)
    assert {ocid: bid_of(r) for ocid, r in by_ocid.items()} == expected
    amended = cancelled = 0
    for releases in by_ocid.values():
        releases.sort(key=lambda r: r["date"])
        assert len({r["id"] for r in releases}) == len(releases)
        assert releases[0]["tag"] == ["tender"]
        for before, after in itertools.pairwise(releases):
            assert after["date"] > before["date"]
            if after["tag"] == ["tenderAmendment"]:
                amended += 1
                assert (after["tender"]["value"], after["tender"]["tenderPeriod"]) != (
                    before["tender"]["value"],
                    before["tender"]["tenderPeriod"],
                )
            if after["tag"] == ["tenderCancellation"]:
                cancelled += 1
                assert after["tender"]["status"] == "cancelled"
    assert amended >= 3
    assert cancelled >= 2
    assert sum(b["status"] == "cancelled" for b in expected.values()) == cancelled
    # Cancelled tenders are cancelled in every shape.
    feed = expected_feed_bids(board.config, epoch=4)
    assert {k: v["status"] for k, v in feed.items()} == {
        v["reference"]: v["status"] for v in expected.values()
    }


def test_ocds_record_package_holds_each_tenders_releases_and_compiled_release(board):
    set_epoch(board, 4)
    packages = ocds_pages(board, OCDS_RECORDS_PATH)
    records = [record for package in packages for record in package["records"]]
    expected = expected_ocds_bids(board.config, epoch=4)
    assert [r["ocid"] for r in records] == list(expected)
    releases = releases_by_ocid(ocds_pages(board, OCDS_RELEASES_PATH))
    for record in records:
        dates = [r["date"] for r in record["releases"]]
        assert dates == sorted(dates)
        assert sorted(r["id"] for r in record["releases"]) == sorted(
            r["id"] for r in releases[record["ocid"]]
        )
        assert record["compiledRelease"]["tender"] == record["releases"][-1]["tender"]
        assert bid_of(record["releases"]) == expected[record["ocid"]]


def test_ocds_page_past_the_last_is_not_found(board):
    status, _, body = call(f"{board.base_url}{OCDS_RELEASES_PATH}?page=999")
    assert status == 404
    assert json.loads(body)["error"]["code"] == "NOT_FOUND"


# --- eGov board -----------------------------------------------------------------------------------


def form_fields(tree, selector):
    form = tree.css_first(selector)
    fields = {i.attributes["name"]: i.attributes.get("value") or "" for i in form.css("input")}
    return form.attributes["action"], form.attributes["method"].upper(), fields


def requests_of(tree, page_url, spec):
    """The requests an object entry of follow/items makes from a page (the design's semantics)."""
    result = []
    for node in tree.css(spec["css"]):
        match = re.search(spec["regex"], node.attributes[spec["attr"]])
        action, method, fields = form_fields(tree, spec["request"]["from_form"])
        for name, template in spec["request"]["form"].items():
            fields[name] = template.replace("{1}", match.group(1))
        assert method == spec["request"]["method"] == "POST"
        result.append((urljoin(page_url, action), tuple(sorted(fields.items()))))
    return result


def crawl_egov(board):
    """(bids, list requests, view requests) of following DEMO_EGOV_RULES over the whole board:
    follow and items by onclick → POST forms."""
    start = f"{board.base_url}{EGOV_LIST_PATH}"
    queue, lists, views, got = [("GET", start, ())], set(), set(), {}
    while queue:
        method, url, form = queue.pop()
        if method == "GET":
            _, body = fetch(url)
        else:
            _, body = fetch(url, method="POST", form=dict(form))
        tree = HTMLParser(body.decode())
        for follow in DEMO_EGOV_RULES["follow"]:
            for request in requests_of(tree, url, follow):
                if request not in lists:
                    lists.add(request)
                    queue.append(("POST", *request))
        for item in DEMO_EGOV_RULES["items"]:
            views.update(requests_of(tree, url, item))
    for view_url, form in views:
        _, body = fetch(view_url, method="POST", form=dict(form))
        tree = HTMLParser(body.decode())
        values = {
            name: convert(tree.css_first(path_of(spec)).text(strip=True), spec)
            for name, spec in DEMO_EGOV_RULES["fields"].items()
        }
        got[values["reference"]] = values
    return got, lists, views


def test_egov_board_crawled_by_its_rules_gives_the_expected_notices(board):
    expected = expected_feed_bids(board.config)
    got, lists, views = crawl_egov(board)
    assert len(lists) == -(-len(expected) // board.config.per_page)
    assert got == expected
    assert all(dict(form)["bbsId"] == BBS_ID for _, form in views)


def test_every_shape_serves_the_expected_notices_in_a_later_epoch(board):
    """Epoch 4: new notices, amendments and cancellations, alike in the API, the XML service
    and the eGov board (the OCDS feed: test_ocds_epochs_amend_and_cancel_in_later_releases)."""
    set_epoch(board, 4)
    expected = expected_feed_bids(board.config, epoch=4)
    assert {v["status"] for v in expected.values()} == {"active", "cancelled"}
    from_api, url = {}, f"{board.base_url}{API_PATH}?per_page=100"
    while url:
        page, records = read_json_page(fetch(url, headers=KEY)[1])
        from_api.update(records)
        url = page["links"]["next"]
    from_xml, page_no, records = {}, 1, None
    while records != {}:
        query = urlencode({"serviceKey": DEMO_SERVICE_KEY, "pageNo": page_no, "numOfRows": 100})
        _, _, records = read_xml_page(fetch(f"{board.base_url}{XML_PATH}?{query}")[1])
        from_xml.update(records)
        page_no += 1
    assert from_api == expected
    assert from_xml == expected
    assert crawl_egov(board)[0] == expected
    old = expected_feed_bids(board.config)
    assert any(expected[k] != old[k] for k in old)  # amended or cancelled since epoch 0


def test_egov_list_pages_past_the_first_only_by_post(board):
    page_size = board.config.per_page
    ids = [str(t.notice.id) for t in tenders(board.config)]

    def listed(body):
        tree = HTMLParser(body.decode())
        return [
            re.search(r"'(\d+)'", a.attributes["onclick"]).group(1)
            for a in tree.css("td.subject a")
        ]

    _, first = fetch(f"{board.base_url}{EGOV_LIST_PATH}")
    _, asked_by_get = fetch(f"{board.base_url}{EGOV_LIST_PATH}?pageIndex=2")
    _, second = fetch(f"{board.base_url}{EGOV_LIST_PATH}", method="POST", form={"pageIndex": 2})
    assert listed(first) == listed(asked_by_get) == ids[:page_size]
    assert listed(second) == ids[page_size : 2 * page_size]
    tree = HTMLParser(first.decode())
    assert tree.css_first("td.subject a").attributes["href"] == "#"
    assert form_fields(tree, "form#listForm") == (
        EGOV_LIST_PATH,
        "POST",
        {"pageIndex": "1", "searchCnd": "", "searchWrd": ""},
    )
    assert form_fields(tree, "form[name=viewForm]") == (
        EGOV_VIEW_PATH,
        "POST",
        {"nttId": "", "bbsId": BBS_ID},
    )
    onclicks = [a.attributes["onclick"] for a in tree.css("div.pagination a")]
    assert "fn_egov_select_noticeList(2); return false;" in onclicks


def test_egov_view_answers_only_a_post_of_a_known_notice(board):
    newest = tenders(board.config)[0].notice
    url = f"{board.base_url}{EGOV_VIEW_PATH}"
    status, headers, _ = call(f"{url}?nttId={newest.id}&bbsId={BBS_ID}")
    assert (status, headers["Allow"]) == (405, "POST")
    status, _, body = call(url, method="POST", form={"nttId": newest.id, "bbsId": BBS_ID})
    assert status == 200
    assert HTMLParser(body.decode()).css_first("td.reference").text() == newest.reference
    for form in ({"nttId": "99999"}, {"nttId": newest.id, "bbsId": "BBSMSTR_0"}, {}):
        status, _, _ = call(url, method="POST", form=form)
        assert status == 404, form


# --- Hostile, conditional, deterministic ----------------------------------------------------------


def test_a_page_showing_a_flaky_notice_fails_once(board):
    flaky = [t for t in tenders(board.config) if t.notice.status == "flaky"]
    assert flaky  # the session's board has one (flaky_every)
    index = tenders(board.config).index(flaky[0])
    probe = uuid.uuid4().hex  # a URL no other request asked for
    url = f"{board.base_url}{API_PATH}?offset={index}&limit=1&probe={probe}"
    assert call(url, headers=KEY)[0] == 500
    assert call(url, headers=KEY)[0] == 200
    status, _, _ = call(f"{board.base_url}{API_PATH}?offset=0&limit=1&probe={probe}", headers=KEY)
    assert status == 200  # a page without one never fails
    bench = BoardConfig.bench(200)
    assert not any(t.notice.status == "flaky" or t.notice.slow for t in tenders(bench))


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        (f"{API_PATH}?per_page=5", KEY),
        (f"{XML_PATH}?serviceKey={DEMO_SERVICE_KEY}&numOfRows=5", {}),
        (f"{OCDS_RELEASES_PATH}?page=1", {}),
        (EGOV_LIST_PATH, {}),
    ],
)
def test_conditional_get_answers_304_until_the_epoch_changes(board, path, headers):
    url = f"{board.base_url}{path}"
    first, _ = fetch(url, headers=headers)
    etag, modified = first["ETag"], first["Last-Modified"]
    assert call(url, headers={**headers, "If-None-Match": etag})[0] == 304
    assert call(url, headers={**headers, "If-Modified-Since": modified})[0] == 304
    set_epoch(board, 1)
    later, _ = fetch(url, headers={**headers, "If-None-Match": etag})  # 200, not 304
    assert later["ETag"] != etag


DIGEST = """
import hashlib
from crawls.demo import egov, feeds
from crawls.demo.board import BoardConfig
config = BoardConfig(listing_pages=3, seed={seed})
bodies = [
    feeds.dumps(feeds.release_package(config, {epoch}, page=1, origin="http://x")),
    feeds.xml_page(config, {epoch}, page=2, rows=9, origin="http://x")[0],
    feeds.dumps(feeds.api_page(config, {epoch}, style="cursor", offset=3, limit=8, origin="x")[0]),
    egov.list_html(config, {epoch}, 2).encode(),
]
print(hashlib.sha256(b"".join(bodies)).hexdigest())
"""


def feeds_digest(seed, epoch):
    config = BoardConfig(listing_pages=3, seed=seed)
    bodies = [
        feeds.dumps(feeds.release_package(config, epoch, page=1, origin="http://x")),
        feeds.xml_page(config, epoch, page=2, rows=9, origin="http://x")[0],
        feeds.dumps(
            feeds.api_page(config, epoch, style="cursor", offset=3, limit=8, origin="x")[0]
        ),
        egov.list_html(config, epoch, 2).encode(),
    ]
    return hashlib.sha256(b"".join(bodies)).hexdigest()


def test_feeds_are_the_same_in_every_process():
    here = feeds_digest(7, 3)
    there = subprocess.run(
        [sys.executable, "-c", DIGEST.format(seed=7, epoch=3)],
        cwd=BASE_DIR,
        env={"PYTHONHASHSEED": "random", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert there == here
    assert feeds_digest(8, 3) != here


def test_expected_helpers_carry_status_currency_and_types():
    config = BoardConfig(listing_pages=2)
    feed = expected_feed_bids(config, epoch=5)
    ocds = expected_ocds_bids(config, epoch=5)
    assert len(feed) == len(ocds) == len(tenders(config, 5))
    one = next(iter(feed.values()))
    assert set(one) == {
        "title", "department", "reference", "views", "amount", "post_date", "deadline",
        "currency", "status",
    }  # fmt: skip
    assert isinstance(one["amount"], Decimal)
    assert isinstance(one["post_date"], date)
    assert one["deadline"].tzinfo is not None
    assert {v["status"] for v in feed.values()} == {"active", "cancelled"}
    assert all(v["classifications"][0].startswith("CPV:") for v in ocds.values())
    assert expected_feed_bids(config, epoch=0) == expected_feed_bids(config)


# --- The Demo workspace's sources -----------------------------------------------------------------


@pytest.mark.django_db
def test_demo_source_ensure_every_kind_creates_each_source_once(workspace_a, board):
    base = board.base_url
    html = demo_source_ensure(workspace=workspace_a, base_url=base, every_kind=True)
    again = demo_source_ensure(workspace=workspace_a, base_url=base, every_kind=True)
    assert html == again
    assert (html.kind, html.name) == ("html", "Demo board")
    wanted = {
        "Demo JSON API": ("json", DEMO_JSON_RULES, {"api_key": DEMO_API_KEY}, API_PATH),
        "Demo XML service": ("xml", DEMO_XML_RULES, {"service_key": DEMO_SERVICE_KEY}, XML_PATH),
        "Demo OCDS feed": ("ocds", demo.DEMO_OCDS_RULES, {}, OCDS_RELEASES_PATH),
        "Demo eGov board": ("html", DEMO_EGOV_RULES, {}, EGOV_LIST_PATH),
    }
    sources = {s.name: s for s in Source.objects.filter(workspace=workspace_a)}
    assert set(sources) == {"Demo board", *wanted}
    for name, (kind, rules, secrets, path) in wanted.items():
        kinds.rules_parse(kind, rules)  # the demo's rules are valid rules of their kind
        source = sources[name]
        assert (source.kind, source.rules, source.secrets) == (kind, rules, secrets)
        assert source.start_urls == [f"{base}{path}"]
