"""Rules of JSON and XML API sources: every problem reported by path, canonical dump, seeds
built from the request template with secrets left as placeholders."""

import copy
import json
import pickle
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest

from crawls.engine import api_rules, kinds
from crawls.engine.api_rules import ApiRules, rules_dump, rules_parse, start_requests
from crawls.engine.request import FORM, JSON, Request, request_hash, resolve
from crawls.engine.rules import Limits, RulesError

LIMITS = Limits()
START = "https://apis.example.go.kr/1230000/BidPublicInfoService/getBidPblancListInfoServc"

GOV_RULES = {
    "request": {
        "method": "GET",
        "query": {
            "serviceKey": "{secret.service_key}",
            "pageNo": "{page}",
            "numOfRows": "{limit}",
            "type": "json",
        },
        "headers": {"Accept": "application/json"},
    },
    "items": "response.body.items.item",
    "key": "bidNtceNo",
    "link": "bidNtceDtlUrl",
    "fields": {
        "title": "bidNtceNm",
        "amount": {"path": "presmptPrce", "type": "decimal"},
        "post_date": {"path": "bidNtceDt", "type": "date", "formats": ["%Y-%m-%d %H:%M:%S"]},
        "status": {"path": "ntceKindNm", "map": {"취소공고": "cancelled"}},
    },
    "pagination": {
        "style": "page",
        "start": 1,
        "size": 100,
        "total": "response.body.totalCount",
        "max_pages": 500,
    },
    "error": {
        "when": "response.header.resultCode",
        "ok": ["00"],
        "message": "response.header.resultMsg",
    },
    "timezone": "Asia/Seoul",
}

XML_RULES = {
    "request": {"url": START, "query": {"ServiceKey": "{secret.key}", "pageNo": "{page}"}},
    "items": "/response/body/items/item",
    "key": ["bidNtceNo", "bidNtceOrd"],
    "fields": {"title": "bidNtceNm", "department": "string(ntceInsttNm)"},
    "pagination": {"style": "page", "size": 10, "total": "/response/body/totalCount"},
    "error": {
        "when": "/OpenAPI_ServiceResponse/cmmMsgHeader/returnReasonCode",
        "ok": ["00"],
        "message": ["//errMsg", "//returnAuthMsg"],
    },
}


def parse(data: object, kind: str = "json") -> ApiRules:
    return rules_parse(data, kind=kind, limits=LIMITS)


def errors_of(data: object, kind: str = "json") -> dict[str, str]:
    with pytest.raises(RulesError) as caught:
        parse(data, kind)
    return caught.value.errors


def changed(base: dict = GOV_RULES, **changes: object) -> dict:
    data = copy.deepcopy(base)
    data.update(changes)
    return data


def with_request(**changes: object) -> dict:
    data = copy.deepcopy(GOV_RULES)
    data["request"].update(changes)
    return data


def with_pagination(**changes: object) -> dict:
    data = copy.deepcopy(GOV_RULES)
    data["pagination"] = changes
    return data


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_api_rules_parse_the_documented_example():
    rules = parse(GOV_RULES)

    assert rules.kind == "json"
    assert rules.items == "response.body.items.item"
    assert rules.key == ("bidNtceNo",)
    assert rules.link == "bidNtceDtlUrl"
    assert rules.timezone == ZoneInfo("Asia/Seoul")
    assert rules.request.method == "GET"
    assert dict(rules.request.query)["serviceKey"] == "{secret.service_key}"
    assert rules.request.headers == (("Accept", "application/json"),)
    assert list(rules.fields) == ["title", "amount", "post_date", "status"]
    assert rules.fields["title"].required is True
    assert rules.fields["amount"].type == "decimal"
    assert rules.fields["post_date"].formats == ("%Y-%m-%d %H:%M:%S",)
    assert rules.fields["status"].map == (("취소공고", "cancelled"),)
    assert rules.pagination == api_rules.Pagination(
        style="page", start=1, size=100, total="response.body.totalCount", max_pages=500
    )
    assert rules.error == api_rules.ErrorEnvelope(
        "response.header.resultCode", ("00",), ("response.header.resultMsg",)
    )


def test_api_rules_are_picklable_hashable_and_dump_round_trips():
    for data, kind in ((GOV_RULES, "json"), (XML_RULES, "xml")):
        rules = parse(data, kind)
        assert pickle.loads(pickle.dumps(rules)) == rules  # noqa: S301 - our own bytes
        assert hash(rules) == hash(parse(data, kind))
        dumped = rules_dump(rules)
        assert json.loads(json.dumps(dumped)) == dumped
        assert parse(dumped, kind) == rules
        assert rules_dump(parse(dumped, kind)) == dumped


def test_api_rules_dump_is_canonical_with_every_key():
    dumped = rules_dump(parse({"items": "data", "key": "id", "fields": {"title": "name"}}))

    assert dumped == {
        "request": {
            "url": None,
            "method": "GET",
            "query": {},
            "form": None,
            "json": None,
            "headers": {},
        },
        "items": "data",
        "key": "id",
        "link": None,
        "fields": {
            "title": {
                "path": "name",
                "type": "text",
                "formats": [],
                "regex": None,
                "required": True,
                "map": {},
            }
        },
        "pagination": {
            "style": "none",
            "start": None,
            "size": None,
            "total": None,
            "max_pages": 1000,
            "next": None,
            "cursor": None,
        },
        "error": None,
        "timezone": "UTC",
    }


def test_kinds_dispatch_to_api_rules():
    rules = kinds.rules_parse("xml", XML_RULES, limits=LIMITS)

    assert kinds.kind_of(rules) == "xml"
    assert kinds.rules_dump("xml", rules) == rules_dump(rules)
    assert kinds.start_requests(rules, [START]) == start_requests(rules, [START])


@pytest.mark.parametrize(
    ("data", "kind", "path", "words"),
    [
        # the document and its top-level keys
        (["items"], "json", "rules", "JSON object"),
        (changed(extra=1), "json", "extra", "unknown key"),
        (changed(items=None), "json", "items", "items is required"),
        (changed(items="response.[body"), "json", "items", "invalid JMESPath"),
        (changed(items="x" * 1001), "json", "items", "at most 1000"),
        (changed(items=3), "json", "items", "not a number"),
        (changed(XML_RULES, items="//item["), "xml", "items", "invalid XPath"),
        (changed(XML_RULES, items="$undefined"), "xml", "items", "invalid XPath"),
        (changed(key=None), "json", "key", "key is required"),
        (changed(key=[]), "json", "key", "1 to 9 paths"),
        (changed(key=["a", "b["]), "json", "key[1]", "invalid JMESPath"),
        (changed(link="a[["), "json", "link", "invalid JMESPath"),
        (changed(timezone="Mars/Base"), "json", "timezone", "unknown time zone"),
        # fields
        (changed(fields=None), "json", "fields", "at least a title"),
        (changed(fields=["title"]), "json", "fields", "not a list"),
        (changed(fields={"department": "x"}), "json", "fields.title", "title field is required"),
        (changed(fields={"title": "t", "Bad-Name": "x"}), "json", "fields.Bad-Name", "lowercase"),
        (changed(fields={"title": 5}), "json", "fields.title", "path string or an object"),
        (
            changed(fields={"title": {"path": "t", "css": "a"}}),
            "json",
            "fields.title.css",
            "unknown",
        ),
        (changed(fields={"title": {"type": "text"}}), "json", "fields.title.path", "required"),
        (
            changed(fields={"title": "t", "views": {"path": "v", "type": "float"}}),
            "json",
            "fields.views.type",
            "must be one of",
        ),
        (
            changed(fields={"title": "t", "amount": {"path": "v", "type": "date"}}),
            "json",
            "fields.amount.type",
            "must be decimal",
        ),
        (
            changed(fields={"title": "t", "amount": {"path": "v", "formats": ["%Y"]}}),
            "json",
            "fields.amount.formats",
            "only apply to date",
        ),
        (
            changed(fields={"title": "t", "post_date": {"path": "v", "formats": "%Y"}}),
            "json",
            "fields.post_date.formats",
            "list of strptime",
        ),
        (
            changed(fields={"title": "t", "post_date": {"path": "v", "formats": ["%H:%M"]}}),
            "json",
            "fields.post_date.formats[0]",
            "year, month and day",
        ),
        (
            changed(fields={"title": {"path": "t", "regex": "(a)(b)"}}),
            "json",
            "fields.title.regex",
            "2 groups",
        ),
        (
            changed(fields={"title": {"path": "t", "regex": "(?=x)"}}),
            "json",
            "fields.title.regex",
            "lookahead",
        ),
        (
            changed(fields={"title": {"path": "t", "required": False}}),
            "json",
            "fields.title.required",
            "must be required",
        ),
        (
            changed(fields={"title": "t", "reference": {"path": "r", "required": "yes"}}),
            "json",
            "fields.reference.required",
            "true or false",
        ),
        (
            changed(fields={"title": "t", "status": {"path": "s", "map": ["a"]}}),
            "json",
            "fields.status.map",
            "map must be an object",
        ),
        (
            changed(fields={"title": "t", "status": {"path": "s", "map": {"a": 1}}}),
            "json",
            "fields.status.map.a",
            "strings",
        ),
        (
            changed(
                fields={
                    "title": "t",
                    "status": {"path": "s", "map": {str(i): "x" for i in range(201)}},
                }
            ),
            "json",
            "fields.status.map",
            "at most 200",
        ),
        (
            changed(fields={"title": "t", **{f"f{i}": "x" for i in range(50)}}),
            "json",
            "fields",
            "at most 50",
        ),
        (
            changed(XML_RULES, fields={"title": "a b"}),
            "xml",
            "fields.title.path",
            "invalid XPath",
        ),
        # request
        (changed(request="GET"), "json", "request", "must be an object"),
        (with_request(verb="GET"), "json", "request.verb", "unknown key"),
        (with_request(method="PUT"), "json", "request.method", "GET or POST"),
        (with_request(url="ftp://apis.example.kr/x"), "json", "request.url", "http(s)"),
        (with_request(url=""), "json", "request.url", "must be a URL"),
        (with_request(url="bids/{page}"), "json", "request.url", "relative url"),
        (with_request(url="https://a.kr/x\ny"), "json", "request.url", "one line"),
        (with_request(query=["a"]), "json", "request.query", "object of names"),
        (
            with_request(query={"pageNo": "{page}", "a": 1.5}),
            "json",
            "request.query.a",
            "string or a whole number",
        ),
        (
            with_request(query={"pageNo": "{page}", "a": "{nope}"}),
            "json",
            "request.query.a",
            "unknown placeholder {nope}",
        ),
        (
            with_request(query={"pageNo": "{page}", "a": "{1}"}),
            "json",
            "request.query.a",
            "pattern group",
        ),
        (
            with_request(query={"pageNo": "{page}", "a": "{cursor}"}),
            "json",
            "request.query.a",
            "needs pagination style 'cursor'",
        ),
        (
            with_request(query={"pageNo": "{page}", "a": "{offset}"}),
            "json",
            "request.query.a",
            "needs pagination style 'offset'",
        ),
        (
            with_request(query={"pageNo": "{page}", "a": "{"}),
            "json",
            "request.query.a",
            "literal brace",
        ),
        (
            with_request(query={"pageNo": "{page}", "a": "x" * 1001}),
            "json",
            "request.query.a",
            "at most 1000",
        ),
        (
            with_request(query={f"q{i}": "x" for i in range(51)}),
            "json",
            "request.query",
            "at most 50",
        ),
        (with_request(query={"type": "json"}), "json", "request", "needs a {page} placeholder"),
        (with_request(form={"pageNo": "{page}"}), "json", "request.form", "set method to POST"),
        (with_request(json={"pageNo": "{page}"}), "json", "request.json", "set method to POST"),
        (
            with_request(method="POST", form={"a": "b"}, json={"c": "d"}),
            "json",
            "request.json",
            "not both",
        ),
        (
            with_request(
                method="POST", json={"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {}}}}}}}}}
            ),
            "json",
            "request.json",
            "deeper than 8",
        ),
        (
            with_request(method="POST", json={"q": ["{nope}"]}),
            "json",
            "request.json.q[0]",
            "unknown placeholder",
        ),
        (
            with_request(headers={"Bad Header": "x"}),
            "json",
            "request.headers.Bad Header",
            "not a valid header name",
        ),
        (
            with_request(headers={"Cookie": "a=b"}),
            "json",
            "request.headers.Cookie",
            "set by the crawler",
        ),
        (
            with_request(headers={"X-Key": "a\r\nX-Evil: 1"}),
            "json",
            "request.headers.X-Key",
            "one line",
        ),
        (
            with_request(headers={f"X-{i}": "v" for i in range(21)}),
            "json",
            "request.headers",
            "at most 20",
        ),
        # pagination
        (changed(pagination="page"), "json", "pagination", "must be an object"),
        (with_pagination(style="pages"), "json", "pagination.style", "must be one of"),
        (with_pagination(style="page", pages=3), "json", "pagination.pages", "unknown key"),
        (with_pagination(style="page", size=0), "json", "pagination.size", "from 1"),
        (with_pagination(style="page", start=-1), "json", "pagination.start", "from 0"),
        (
            with_pagination(style="page", size=10, max_pages=0),
            "json",
            "pagination.max_pages",
            "from 1",
        ),
        (
            with_pagination(style="page", size=10, max_pages=True),
            "json",
            "pagination.max_pages",
            "whole number",
        ),
        (with_pagination(style="page", total="n"), "json", "pagination.size", "total needs size"),
        (
            with_pagination(style="page", size=10, total="n["),
            "json",
            "pagination.total",
            "invalid JMESPath",
        ),
        (
            with_pagination(style="page", size=10, next="n"),
            "json",
            "pagination.next",
            "only applies",
        ),
        (
            with_pagination(style="page", size=10, cursor="c"),
            "json",
            "pagination.cursor",
            "only applies",
        ),
        (with_pagination(style="next", total="n"), "json", "pagination.total", "only applies"),
        (with_pagination(style="next", start=2), "json", "pagination.start", "only applies"),
        (with_pagination(style="next"), "json", "pagination.next", "needs next"),
        (with_pagination(style="cursor"), "json", "pagination.cursor", "needs cursor"),
        (with_pagination(style="offset"), "json", "pagination.size", "needs size"),
        (with_pagination(style="none"), "json", "pagination.size", "uses {limit}"),
        # error envelope
        (changed(error="code"), "json", "error", "must be an object"),
        (changed(error={"when": "code", "then": 1}), "json", "error.then", "unknown key"),
        (changed(error={"ok": ["00"]}), "json", "error.when", "required"),
        (changed(error={"when": "code", "ok": [True]}), "json", "error.ok", "success"),
        (changed(error={"when": "code", "message": 5}), "json", "error.message", "up to 9 paths"),
        (
            changed(error={"when": "code", "message": ["a", "b["]}),
            "json",
            "error.message[1]",
            "invalid JMESPath",
        ),
    ],
)
def test_api_rules_parse_names_each_problem_by_path(data, kind, path, words):
    errors = errors_of(data, kind)

    assert path in errors, errors
    if words is not None:
        assert words in errors[path]


def test_api_rules_parse_reports_every_problem_at_once():
    data = changed(
        items="a[",
        key=None,
        fields={"title": {"path": "t", "type": "int"}},
        pagination={"style": "sideways"},
        error={"when": ""},
        timezone="Nowhere",
    )

    assert set(errors_of(data)) >= {
        "items",
        "key",
        "fields.title.type",
        "pagination.style",
        "error.when",
        "timezone",
    }


def test_api_rules_parse_refuses_other_kinds_and_uses_settings_limits():
    with pytest.raises(RulesError) as caught:
        rules_parse(GOV_RULES, kind="html", limits=LIMITS)
    assert "kind" in caught.value.errors

    with pytest.raises(RulesError) as caught:
        rules_parse(changed(items="x" * 11), kind="json", limits=Limits(selector_length=10))
    assert "at most 10" in caught.value.errors["items"]


def test_api_rules_accept_each_pagination_style_and_its_placeholders():
    offset = parse(
        with_request(query={"from": "{offset}", "rows": "{limit}"})
        | {"pagination": {"style": "offset", "size": 50, "total": "total"}}
    )
    assert (offset.pagination.style, offset.pagination.start) == ("offset", 0)

    cursor = parse(
        with_request(query={"after": "{cursor}"})
        | {"pagination": {"style": "cursor", "cursor": "meta.next_cursor"}}
    )
    assert cursor.pagination.cursor == "meta.next_cursor"

    nxt = parse(with_request(query={}) | {"pagination": {"style": "next", "next": "links.next"}})
    assert nxt.pagination.next == "links.next"

    link = parse(with_request(query={}) | {"pagination": {"style": "link", "max_pages": 3}})
    assert link.pagination.max_pages == 3

    # {cursor} only as a whole value: the first request leaves that entry out.
    errors = errors_of(
        with_request(query={"after": "c-{cursor}"})
        | {"pagination": {"style": "cursor", "cursor": "c"}}
    )
    assert "whole value" in errors["request.query.after"]


def test_start_requests_fill_the_first_page_and_keep_secrets_as_placeholders():
    rules = parse(GOV_RULES)

    seeds = start_requests(rules, [f"{START}?inqryDiv=1", f"{START}?inqryDiv=1"])

    assert len(seeds) == 1  # the same seed twice is one
    seed = seeds[0]
    assert query_of(seed.url) == {
        "inqryDiv": "1",
        "serviceKey": "{secret.service_key}",
        "pageNo": "1",
        "numOfRows": "100",
        "type": "json",
    }
    assert "%7Bsecret.service_key%7D" in seed.url  # canonical: the placeholder encoded
    assert seed.method == "GET"
    assert seed.body == ""
    assert seed.headers == (("Accept", "application/json"),)
    assert seed.context == {"page": 1}
    # Only the fetcher puts the secret in, at send time.
    assert "serviceKey=abc%2Bdef%3D%3D" in resolve(seed.url, {"service_key": "abc+def=="})
    assert "abc" not in json.dumps(seed.to_json()) + seed.url


def test_start_requests_use_the_template_url_once_or_relative_to_each_start_url():
    absolute = parse(XML_RULES, "xml")
    seeds = start_requests(absolute, ["https://one.example/", "https://two.example/"])
    assert [urlsplit(s.url).netloc for s in seeds] == ["apis.example.go.kr"]

    relative = parse(with_request(url="api/bids"))
    seeds = start_requests(relative, ["https://one.example/board/", "https://two.example/"])
    assert [s.url.partition("?")[0] for s in seeds] == [
        "https://one.example/board/api/bids",
        "https://two.example/api/bids",
    ]

    with pytest.raises(ValueError, match="not a valid URL"):
        start_requests(relative, ["http://bad.example:99999/"])


def test_start_requests_build_form_and_json_bodies():
    form = parse(
        changed(
            request={
                "url": START,
                "method": "post",
                "form": {"pageIndex": "{page}", "key": "{secret.key}", "kind": "bid"},
            }
        )
    )
    (seed,) = start_requests(form, [START])
    assert (seed.method, seed.content_type) == ("POST", FORM)
    assert seed.body == "pageIndex=1&key=%7Bsecret.key%7D&kind=bid"
    assert resolve(seed.body, {"key": "k/1+2"}) == "pageIndex=1&key=k%2F1%2B2&kind=bid"

    body = parse(
        changed(
            request={
                "url": START,
                "method": "POST",
                "json": {
                    "page": "{page}",
                    "size": "{limit}",
                    "q": {"after": "{cursor}"},
                    "cursors": ["{cursor}", "x"],
                },
            },
            pagination={"style": "cursor", "cursor": "next", "size": 20},
        )
    )
    (seed,) = start_requests(body, [START])
    assert seed.content_type == JSON
    # Number placeholders stay numbers; the first request has no cursor, so no "after".
    assert json.loads(seed.body) == {"page": 1, "size": 20, "q": {}, "cursors": ["x"]}
    assert seed.context == {"page": 1}


def test_start_requests_of_an_unpaged_api_are_plain_gets():
    rules = parse({"items": "data", "key": "id", "fields": {"title": "name"}})

    (seed,) = start_requests(rules, ["https://api.example/notices?b=2&a=1"])

    assert seed == Request("https://api.example/notices?a=1&b=2")
    assert seed.is_plain_get
    assert request_hash(seed) == request_hash(Request(seed.url))


def test_offset_rules_start_at_the_given_offset():
    rules = parse(
        with_request(query={"from": "{offset}", "rows": "{limit}"})
        | {"pagination": {"style": "offset", "start": 10, "size": 5}}
    )

    (seed,) = start_requests(rules, [START])

    assert seed.context == {"offset": 10}
    assert query_of(seed.url) == {"from": "10", "rows": "5"}


def test_api_fields_convert_like_html_fields():
    rules = parse(GOV_RULES)
    amount = rules.fields["amount"]

    assert isinstance(amount, api_rules.ApiField)
    assert amount.path == "presmptPrce"
    assert amount.css == ""
    assert parse(changed(fields={"title": "t", "amount": "a"})).fields["amount"].type == "decimal"


@pytest.mark.parametrize(
    "pagination",
    [
        {"style": "none"},
        {"style": "page", "start": 0, "size": 10},
        {"style": "offset", "size": 10, "total": "total"},
        {"style": "next", "next": "links.next", "max_pages": 5},
        {"style": "cursor", "cursor": "meta.cursor"},
        {"style": "link"},
    ],
)
def test_api_rules_dump_round_trips_every_pagination_style(pagination):
    placeholder = {"page": "{page}", "offset": "{offset}", "cursor": "{cursor}"}
    query = {"p": placeholder[pagination["style"]]} if pagination["style"] in placeholder else {}
    data = {
        "request": {"query": query},
        "items": "data",
        "key": "id",
        "fields": {"title": "name"},
        "pagination": pagination,
    }
    rules = parse(data)

    assert parse(rules_dump(rules)) == rules
    assert rules_dump(rules)["pagination"]["style"] == pagination["style"]


def test_api_rules_required_paths_say_what_they_point_at():
    errors = errors_of(changed(items=None, fields={"title": {"type": "text"}}))

    assert errors["items"].startswith("items is required: a path to the list of items")
    assert errors["fields.title.path"] == (
        "path is required: a path to the field's value within each item"
    )
