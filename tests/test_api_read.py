"""Reading JSON and XML API responses: records, the publisher's error envelope, pagination and
its stop conditions, hardened XML, encodings, bounds and the deadline."""

import copy
import json
import time
from datetime import date
from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest

from crawls.engine import api_read, kinds, sandbox, xmlsafe
from crawls.engine.api_rules import rules_parse, start_requests
from crawls.engine.request import Request
from crawls.engine.rules import Limits

LIMITS = Limits()
API = "https://apis.example.go.kr/1230000/BidPublicInfoService/getBidPblancListInfoServc"

GOV_RULES = {
    "request": {
        "url": API,
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
        "department": {"path": "ntceInsttNm", "required": False},
        "amount": {"path": "presmptPrce", "type": "decimal"},
        "views": {"path": "inqryCnt"},
        "post_date": {"path": "bidNtceDt", "type": "date", "formats": ["%Y-%m-%d %H:%M:%S"]},
        "status": {"path": "ntceKindNm", "map": {"취소공고": "cancelled", "일반": "active"}},
        "classifications": {"path": "cls"},
    },
    "pagination": {
        "style": "page",
        "start": 1,
        "size": 2,
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
    "request": {"url": API, "query": {"ServiceKey": "{secret.key}", "pageNo": "{page}"}},
    "items": "/response/body/items/item",
    "key": ["bidNtceNo", "bidNtceOrd"],
    "link": "@href",
    "fields": {
        "title": "bidNtceNm",
        "department": "string(ntceInsttNm)",
        "amount": {"path": "presmptPrce", "type": "decimal"},
        "classifications": "cls/code",
    },
    "pagination": {"style": "page", "size": 10, "total": "/response/body/totalCount"},
    "error": {
        "when": "/OpenAPI_ServiceResponse/cmmMsgHeader/returnReasonCode"
        " | /response/header/resultCode",
        "ok": ["00"],
        "message": ["//cmmMsgHeader/errMsg", "//cmmMsgHeader/returnAuthMsg"],
    },
}

GOV_ERROR_XML = b"""<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>
<returnAuthMsg>SERVICE_KEY_IS_NOT_REGISTERED_ERROR</returnAuthMsg><returnReasonCode>30
</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>"""


def parse(data: dict, kind: str = "json"):
    return rules_parse(data, kind=kind, limits=LIMITS)


def changed(base: dict, **changes: object) -> dict:
    data = copy.deepcopy(base)
    data.update(changes)
    return data


def item(number: int, **extra: object) -> dict:
    return {
        "bidNtceNo": f"R{number:05d}",
        "bidNtceNm": f"도로 보수공사 {number}",
        "ntceInsttNm": "조달청",
        "presmptPrce": "4,477,000,000",
        "inqryCnt": 12,
        "bidNtceDt": "2026-11-23 10:00:00",
        "ntceKindNm": "일반",
        "bidNtceDtlUrl": f"/ep/view.do?no={number}",
        **extra,
    }


def gov_body(items: object, *, total: int | None = 5, code: str = "00") -> bytes:
    body: dict = {"items": {"item": items}}
    if total is not None:
        body["totalCount"] = total
    data = {
        "response": {"header": {"resultCode": code, "resultMsg": "NORMAL SERVICE."}, "body": body}
    }
    return json.dumps(data, ensure_ascii=False).encode()


def first_request(rules) -> Request:
    (seed,) = start_requests(rules, [API])
    return seed


def read(body: bytes, rules, request: Request | None = None, **kwargs):
    request = request or first_request(rules)
    kwargs.setdefault("url", request.url)
    return api_read.read(body, rules=rules, request=request, **kwargs)


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


# --- records ------------------------------------------------------------------------------------


def test_read_json_items_into_records_with_typed_fields():
    rules = parse(GOV_RULES)
    body = gov_body(
        [
            item(1, presmptPrce=1234.50, cls=["72000000", {"scheme": "UNSPSC", "id": "8111"}]),
            item(
                2, ntceKindNm="취소공고", inqryCnt="1,234", bidNtceDtlUrl="https://x.kr/a?b=2&a=1"
            ),
        ]
    )

    page = read(body, rules)

    assert page.error is None
    assert page.errors == {}
    assert page.timeout is None
    assert [r.key for r in page.records] == ["R00001", "R00002"]
    first, second = page.records
    assert first.fields == {
        "title": "도로 보수공사 1",
        "department": "조달청",
        "amount": Decimal("1234.50"),  # exact: JSON numbers are read as decimals
        "views": 12,
        "post_date": date(2026, 11, 23),
        "status": "active",
        "classifications": ["72000000", {"scheme": "UNSPSC", "id": "8111"}],
    }
    assert first.url == "https://apis.example.go.kr/ep/view.do?no=1"
    assert first.errors == {}
    assert second.fields["amount"] == Decimal("4477000000")
    assert second.fields["views"] == 1234
    assert second.fields["status"] == "cancelled"
    assert second.fields["classifications"] is None
    assert second.url == "https://x.kr/a?a=1&b=2"  # canonical


def test_read_leaves_out_items_without_key_or_required_field_and_says_which():
    rules = parse(GOV_RULES)
    items = [
        item(1),
        item(2, bidNtceNo=""),
        item(3, bidNtceNm=None),
        item(4, presmptPrce="미정"),  # optional: kept, reported on the record
        "not an item",
        item(6, bidNtceNm=["a", "b"]),
    ]

    page = read(gov_body(items), rules)

    assert [r.key for r in page.records] == ["R00001", "R00004"]
    assert page.records[1].fields["amount"] is None
    assert "no number" in page.records[1].errors["amount"]
    assert set(page.errors) == {"items[1]", "items[2]", "items[4]", "items[5]"}
    assert "no key" in page.errors["items[1]"]
    assert page.errors["items[2]"].startswith("R00003: required field title not found")
    assert "a string, not an object" in page.errors["items[4]"]
    assert "2 values" in page.errors["items[5]"]


def test_read_reports_at_most_twenty_items_and_counts_the_rest():
    rules = parse(GOV_RULES)

    page = read(gov_body([item(i, bidNtceNo=None) for i in range(30)]), rules)

    assert page.records == []
    assert len([k for k in page.errors if k.startswith("items[")]) == 20
    assert page.errors["items"] == "30 of 30 items left out; the first 20 are listed"


def test_read_json_items_as_one_object_or_an_empty_string():
    rules = parse(GOV_RULES)

    single = read(gov_body(item(7), total=1), rules)
    empty = read(json.dumps({"response": {"body": {"items": ""}}}).encode(), rules)

    assert [r.key for r in single.records] == ["R00007"]
    assert (empty.records, empty.errors, empty.requests) == ([], {}, [])


def test_read_items_path_that_is_not_a_list():
    rules = parse(GOV_RULES)

    page = read(json.dumps({"response": {"body": {"items": {"item": 5}}}}).encode(), rules)

    assert page.records == []
    assert "gives a number, not a list" in page.errors["items"]


def test_read_json_with_bom_and_in_euc_kr():
    rules = parse(GOV_RULES)
    utf8 = b"\xef\xbb\xbf" + gov_body([item(1)])
    euc_kr = json.dumps(
        json.loads(gov_body([item(1, bidNtceNm="똠방각하 공사")])), ensure_ascii=False
    )

    assert [r.key for r in read(utf8, rules).records] == ["R00001"]
    page = read(euc_kr.encode("cp949"), rules)
    assert page.records[0].fields["title"] == "똠방각하 공사"


# --- bodies that are not read -------------------------------------------------------------------


def test_read_not_json_is_a_page_error_not_a_publisher_error():
    rules = parse(GOV_RULES)

    page = read(b"<html><body>Service Unavailable</body></html>", rules)

    assert page.error is None
    assert page.errors["response"].startswith("not JSON: ")
    assert "<html><body>Service Unavailable" in page.errors["response"]
    assert page.records == []


def test_read_refuses_deep_json_without_recursing():
    rules = parse(GOV_RULES)
    deep = b"[" * 100_000 + b"]" * 100_000

    page = read(deep, rules)

    assert page.errors == {"response": "not read: JSON nested deeper than 64 levels"}
    assert page.records == []


def test_read_refuses_json_constants():
    page = read(b'{"response": NaN}', parse(GOV_RULES))

    assert "NaN is not a JSON value" in page.errors["response"]


# --- the error envelope -------------------------------------------------------------------------


def test_read_json_error_envelope_gives_the_publishers_message():
    rules = parse(GOV_RULES)
    body = json.dumps(
        {"response": {"header": {"resultCode": "99", "resultMsg": "LIMITED NUMBER OF SERVICE"}}}
    ).encode()

    page = read(body, rules)

    assert page.error == "LIMITED NUMBER OF SERVICE"
    assert (page.records, page.requests, page.errors) == ([], [], {})


def test_read_error_envelope_on_an_error_status_and_without_one():
    rules = parse(GOV_RULES)
    envelope = json.dumps({"response": {"header": {"resultCode": "30"}}}).encode()

    assert read(envelope, rules, status=401).error == "result code 30"
    unauthorised = read(b'{"message": "no"}', rules, status=401)
    assert (unauthorised.error, unauthorised.errors) == (None, {"response": "HTTP 401"})
    broken = read(b"<h1>Bad gateway</h1>", rules, status=502)
    assert (broken.error, broken.errors) == (None, {"response": "HTTP 502"})
    fine = read(gov_body([item(1)]), rules, status=404)
    assert (fine.error, fine.errors, fine.records) == (None, {"response": "HTTP 404"}, [])


def test_read_error_envelope_result_codes_as_numbers_or_strings():
    rules = parse(GOV_RULES)  # ok: ["00"]

    def envelope(code: object) -> bytes:
        return json.dumps({"response": {"header": {"resultCode": code, "resultMsg": "m"}}}).encode()

    assert read(envelope(0), rules).error is None
    assert read(envelope("0"), rules).error is None
    assert read(envelope(" 00 "), rules).error is None
    assert read(envelope(3), rules).error == "m"
    assert read(envelope("0a"), rules).error == "m"


def test_read_error_envelope_without_ok_values():
    rules = parse(
        changed(GOV_RULES, error={"when": "error.code", "message": ["error.code", "error.text"]})
    )

    page = read(json.dumps({"error": {"code": 17, "text": "quota"}}).encode(), rules)

    assert page.error == "17: quota"
    assert read(gov_body([item(1)]), rules).error is None


def test_read_json_source_answered_with_the_gov_xml_envelope():
    # data.go.kr answers a bad key in XML whatever type=json asked for.
    rules = parse(
        changed(
            GOV_RULES,
            error={
                "when": "response.header.resultCode || "
                "OpenAPI_ServiceResponse.cmmMsgHeader.returnReasonCode",
                "ok": ["00"],
                "message": [
                    "OpenAPI_ServiceResponse.cmmMsgHeader.errMsg",
                    "OpenAPI_ServiceResponse.cmmMsgHeader.returnAuthMsg",
                ],
            },
        )
    )

    page = read(GOV_ERROR_XML, rules)

    assert page.error == "SERVICE ERROR: SERVICE_KEY_IS_NOT_REGISTERED_ERROR"
    assert page.errors == {}


def test_read_xml_gov_error_envelope():
    rules = parse(XML_RULES, "xml")

    page = read(b'<?xml version="1.0" encoding="UTF-8"?>\n' + GOV_ERROR_XML, rules)

    assert page.error == "SERVICE ERROR: SERVICE_KEY_IS_NOT_REGISTERED_ERROR"
    assert page.records == []


# --- XML ----------------------------------------------------------------------------------------


def xml_body(count: int, *, total: int = 25, encoding: str = "UTF-8", title: str = "공사") -> bytes:
    items = "".join(
        f'<item href="/view.do?no={i}"><bidNtceNo>N{i}</bidNtceNo><bidNtceOrd>00{i % 2}'
        f"</bidNtceOrd><bidNtceNm>{title} {i}</bidNtceNm><ntceInsttNm>강남구</ntceInsttNm>"
        f"<presmptPrce>1000{i}</presmptPrce><cls><code>CPV:4500</code><code>x{i}</code></cls>"
        f"</item>"
        for i in range(count)
    )
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n<response><header><resultCode>00'
        f"</resultCode><resultMsg>NORMAL SERVICE.</resultMsg></header><body><items>{items}"
        f"</items><numOfRows>10</numOfRows><totalCount>{total}</totalCount></body></response>"
    )
    return text.encode("cp949" if encoding == "EUC-KR" else encoding)


def test_read_xml_items_with_xpath_fields():
    rules = parse(XML_RULES, "xml")

    page = read(xml_body(2), rules)

    assert page.error is None
    assert page.errors == {}
    assert [r.key for r in page.records] == ["N0/000", "N1/001"]
    assert page.records[1].fields == {
        "title": "공사 1",
        "department": "강남구",
        "amount": Decimal("10001"),
        "classifications": ["CPV:4500", "x1"],
    }
    assert page.records[1].url == "https://apis.example.go.kr/view.do?no=1"
    # Total 25 at 10 a page: pages 2 and 3, asked for at once.
    assert [query_of(r.url)["pageNo"] for r in page.requests] == ["2", "3"]
    assert all(query_of(r.url)["ServiceKey"] == "{secret.key}" for r in page.requests)


def test_read_euc_kr_xml_as_cp949():
    rules = parse(XML_RULES, "xml")
    body = xml_body(1, encoding="EUC-KR", title="똠방 도로")
    assert "똠".encode("cp949") in body  # 똠: CP949 only, not in EUC-KR proper
    with pytest.raises(UnicodeDecodeError):
        body.decode("euc_kr")

    page = read(body, rules)

    assert page.records[0].fields["title"] == "똠방 도로 0"
    assert page.records[0].fields["department"] == "강남구"


def test_read_xml_items_path_must_select_elements():
    rules = parse(changed(XML_RULES, items="count(//item)"), "xml")

    page = read(xml_body(2), rules)

    assert "must select elements" in page.errors["items"]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<response><body><items><item><bidNtceNo>1</bidNtceNo><bidNtceOrd>0</bidNtceOrd>
<bidNtceNm>&lol9;</bidNtceNm></item></items></body></response>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<response><body><items><item><bidNtceNo>1</bidNtceNo><bidNtceOrd>0</bidNtceOrd>
<bidNtceNm>&xxe;</bidNtceNm></item></items></body></response>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE response SYSTEM "http://127.0.0.1:9/evil.dtd">
<response><body><items><item><bidNtceNo>1</bidNtceNo><bidNtceOrd>0</bidNtceOrd>
<bidNtceNm>&remote;</bidNtceNm></item></items></body></response>"""


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        EXTERNAL_DTD,
        BILLION_LAUGHS.decode().replace('"1.0"?>', '"1.0" encoding="UTF-16"?>').encode("utf-16"),
    ],
    ids=["billion-laughs", "external-entity", "external-dtd", "utf-16-bomb"],
)
def test_read_refuses_xml_declaring_entities_or_an_external_dtd(body):
    rules = parse(XML_RULES, "xml")

    page = read(body, rules)

    assert page.records == []
    assert page.error is None
    assert page.errors["response"].startswith("refused XML with a DOCTYPE")
    assert "root:" not in json.dumps(page.errors)
    with pytest.raises(xmlsafe.XmlError, match="refused XML"):
        xmlsafe.parse(body)


def test_xmlsafe_refuses_entities_it_parsed_without_expanding(monkeypatch):
    assert xmlsafe._declares(BILLION_LAUGHS)
    assert xmlsafe._declares(EXTERNAL_DTD)
    assert not xmlsafe._declares(b"<!DOCTYPE html><html/>")
    # Past the byte check, the parse itself expands nothing and its own check refuses.
    monkeypatch.setattr(xmlsafe, "_declares", lambda data: False)
    for body in (EXTERNAL_ENTITY, EXTERNAL_DTD):
        with pytest.raises(xmlsafe.XmlError, match="refused XML"):
            xmlsafe.parse(body)
    # libxml2 stops the bomb itself (its amplification limit), expanding nothing past it.
    with pytest.raises(xmlsafe.XmlError, match="amplification"):
        xmlsafe.parse(BILLION_LAUGHS)


def test_xmlsafe_reads_a_plain_doctype_and_refuses_what_is_not_xml():
    root = xmlsafe.parse(b"<!DOCTYPE response><response><a>1</a></response>")
    assert root.findtext("a") == "1"
    with pytest.raises(xmlsafe.XmlError, match="not XML"):
        xmlsafe.parse(b"{}")
    with pytest.raises(xmlsafe.XmlError, match="empty"):
        xmlsafe.parse(b"  ")
    page = read(b'{"a": 1}', parse(XML_RULES, "xml"))
    assert page.errors["response"].startswith("not XML: ")


# --- pagination ---------------------------------------------------------------------------------


def test_page_style_requests_every_page_at_once_when_the_first_knows_the_total():
    rules = parse(GOV_RULES)  # size 2

    page = read(gov_body([item(1), item(2)], total=7), rules)

    assert [r.context for r in page.requests] == [{"page": 2}, {"page": 3}, {"page": 4}]
    for number, request in enumerate(page.requests, 2):
        assert query_of(request.url) == {
            "serviceKey": "{secret.service_key}",
            "pageNo": str(number),
            "numOfRows": "2",
            "type": "json",
        }
        assert request.headers == (("Accept", "application/json"),)
    # Later pages know the first one asked for them all.
    later = read(gov_body([item(3), item(4)], total=7), rules, request=page.requests[0])
    assert later.requests == []


def test_page_style_total_is_capped_by_max_pages():
    rules = parse(changed(GOV_RULES, pagination=GOV_RULES["pagination"] | {"max_pages": 3}))

    page = read(gov_body([item(1), item(2)], total=1000), rules)

    assert [r.context["page"] for r in page.requests] == [2, 3]


def test_page_style_without_total_goes_one_page_at_a_time_until_empty_or_the_cap():
    pagination = {"style": "page", "size": 2, "max_pages": 3}
    rules = parse(changed(GOV_RULES, pagination=pagination))

    first = read(gov_body([item(1)], total=None), rules)
    assert [r.context for r in first.requests] == [{"page": 2}]
    second = read(gov_body([item(2)], total=None), rules, request=first.requests[0])
    assert [r.context for r in second.requests] == [{"page": 3}]
    third = read(gov_body([item(3)], total=None), rules, request=second.requests[0])
    assert third.requests == []  # max_pages
    empty = read(gov_body([], total=None), rules, request=first.requests[0])
    assert empty.requests == []


def test_page_style_stops_on_an_empty_page_whatever_the_total():
    rules = parse(GOV_RULES)

    page = read(gov_body([], total=50), rules)

    assert page.requests == []


def test_page_style_with_an_unreadable_total_says_so_and_goes_on():
    rules = parse(GOV_RULES)

    page = read(gov_body([item(1)], total="many"), rules)  # type: ignore[arg-type]

    assert "not a number of items" in page.errors["pagination.total"]
    assert [r.context for r in page.requests] == [{"page": 2}]


def test_offset_style_steps_by_size():
    rules = parse(
        changed(
            GOV_RULES,
            request={"url": API, "query": {"from": "{offset}", "rows": "{limit}"}},
            pagination={"style": "offset", "size": 2, "total": "response.body.totalCount"},
        )
    )
    seed = first_request(rules)
    assert seed.context == {"offset": 0}

    page = read(gov_body([item(1), item(2)], total=5), rules, request=seed)

    assert [r.context for r in page.requests] == [{"offset": 2}, {"offset": 4}]
    assert [query_of(r.url)["from"] for r in page.requests] == ["2", "4"]
    nothing_more = read(gov_body([item(5)], total=5), rules, request=page.requests[1])
    assert nothing_more.requests == []


def next_rules(**pagination: object):
    return parse(
        changed(
            GOV_RULES,
            request={
                "url": API,
                "query": {"key": "{secret.k}"},
                "headers": {"X-Key": "{secret.k}"},
            },
            pagination={"style": "next", "next": "links.next", **pagination},
        )
    )


def with_links(items: list, links: dict) -> bytes:
    data = json.loads(gov_body(items, total=None))
    data["links"] = links
    return json.dumps(data).encode()


def test_next_style_follows_the_next_link_as_a_get():
    rules = next_rules(max_pages=3)
    seed = first_request(rules)

    page = read(with_links([item(1)], {"next": "?cursor=abc&key=x"}), rules, request=seed)

    (following,) = page.requests
    # The key the publisher echoed is put back as its placeholder.
    assert following.url == f"{API}?cursor=abc&key=%7Bsecret.k%7D"
    assert (following.method, following.body) == ("GET", "")
    assert following.headers == (("X-Key", "{secret.k}"),)
    assert following.context == {"page": 2}
    # Stops: the cap, no next link, a link back to the same page, a non-web link.
    last = read(
        with_links([item(2)], {"next": "/more"}), rules, request=Request(API, context={"page": 3})
    )
    assert last.requests == []
    assert read(with_links([item(1)], {"next": None}), rules, request=seed).requests == []
    assert read(with_links([item(1)], {"next": seed.url}), rules, request=seed).requests == []
    echoed = f"{API}?key=REAL-SECRET-VALUE"  # the same page, with the key the fetcher sent
    assert read(with_links([item(1)], {"next": echoed}), rules, request=seed).requests == []
    assert (
        read(with_links([item(1)], {"next": "javascript:x()"}), rules, request=seed).requests == []
    )
    assert read(with_links([], {"next": "/more"}), rules, request=seed).requests == []


def test_link_style_follows_the_link_header():
    rules = parse(
        changed(GOV_RULES, request={"url": API}, pagination={"style": "link", "max_pages": 2})
    )
    seed = first_request(rules)
    assert seed.context == {"page": 1}

    page = read(gov_body([item(1)]), rules, request=seed, link_next="/api?page=2")

    assert [(r.url, r.context) for r in page.requests] == [
        ("https://apis.example.go.kr/api?page=2", {"page": 2})
    ]
    assert read(gov_body([item(1)]), rules, request=seed).requests == []
    capped = read(gov_body([item(1)]), rules, request=page.requests[0], link_next="/api?page=3")
    assert capped.requests == []


def test_cursor_style_refills_the_template_with_the_next_cursor():
    rules = parse(
        changed(
            GOV_RULES,
            request={
                "url": API,
                "method": "POST",
                "form": {"after": "{cursor}", "n": "{limit}", "key": "{secret.k}"},
            },
            pagination={"style": "cursor", "cursor": "meta.next", "size": 2},
        )
    )
    seed = first_request(rules)
    assert seed.body == "n=2&key=%7Bsecret.k%7D"  # no cursor yet

    def body(items: list, cursor: object) -> bytes:
        data = json.loads(gov_body(items, total=None))
        data["meta"] = {"next": cursor}
        return json.dumps(data).encode()

    page = read(body([item(1)], "c2"), rules, request=seed)
    (following,) = page.requests
    assert following.body == "after=c2&n=2&key=%7Bsecret.k%7D"
    assert following.url == seed.url
    assert following.context == {"page": 2, "cursor": "c2"}
    # Stops: no cursor, the same cursor again, an empty page.
    assert read(body([item(2)], None), rules, request=following).requests == []
    assert read(body([item(2)], "c2"), rules, request=following).requests == []
    assert read(body([], "c3"), rules, request=following).requests == []


def test_cursor_style_in_the_query_of_a_start_url():
    rules = parse(
        changed(
            GOV_RULES,
            request={"query": {"cursor": "{cursor}", "key": "{secret.k}"}},
            pagination={"style": "cursor", "cursor": "meta.next"},
        )
    )
    (seed,) = start_requests(rules, ["https://api.example/v1/bids?lang=ko"])
    assert query_of(seed.url) == {"lang": "ko", "key": "{secret.k}"}
    data = json.loads(gov_body([item(1)], total=None))
    data["meta"] = {"next": "zz 9"}

    (following,) = read(json.dumps(data).encode(), rules, request=seed).requests

    assert following.url.startswith("https://api.example/v1/bids?")
    assert query_of(following.url) == {"lang": "ko", "key": "{secret.k}", "cursor": "zz 9"}


def test_unpaged_rules_request_nothing_more():
    rules = parse(changed(GOV_RULES, request={"url": API}, pagination={"style": "none"}))

    page = read(gov_body([item(1)], total=99), rules)

    assert len(page.records) == 1
    assert page.requests == []


# --- the deadline and the dispatch --------------------------------------------------------------


def test_read_many_items_without_a_deadline_reads_them_all():
    rules = parse(GOV_RULES)

    page = read(gov_body([item(i) for i in range(20_000)], total=20_000), rules)

    assert len(page.records) == 20_000
    assert page.timeout is None
    assert len(page.requests) == 499  # 10,000 pages of 2, capped at 500


def test_read_past_its_deadline_stops_between_items_and_names_the_step():
    rules = parse(GOV_RULES)
    body = gov_body([item(i) for i in range(20_000)], total=20_000)
    deadline = time.monotonic() + 2.0  # ample to parse 20,000 items
    steps: list[str] = []

    def on_step(step: str) -> None:
        steps.append(step)
        if step == "items":  # the items step starts in time and runs past the deadline
            time.sleep(max(0.0, deadline - time.monotonic()) + 0.01)

    page = read(body, rules, deadline=deadline, on_step=on_step)

    assert page.timeout == "items"
    assert steps == ["page", "items"]
    assert len(page.records) < 20_000
    assert page.requests == []


def test_kinds_read_dispatches_json_and_xml():
    rules = parse(XML_RULES, "xml")
    request = first_request(rules)

    page = kinds.read(xml_body(1, total=1), rules=rules, url=request.url, request=request)

    assert [r.key for r in page.records] == ["N0/000"]
    assert page.requests == []


def test_the_sandbox_child_reads_api_responses_with_pickled_rules():
    # The child is a fresh interpreter without Django: rules and pages cross as pickles.
    rules = parse(XML_RULES, "xml")
    request = first_request(rules)
    child = sandbox.Sandbox()
    try:
        page = child.extract(
            xml_body(2), url=request.url, rules=rules, budget=10, kill_after=10, request=request
        )
        refused = child.extract(
            BILLION_LAUGHS, url=request.url, rules=rules, budget=10, kill_after=10, request=request
        )
    finally:
        child.close()

    assert [r.key for r in page.records] == ["N0/000", "N1/001"]
    assert page.records[0].fields["amount"] == Decimal("10000")
    assert [query_of(r.url)["pageNo"] for r in page.requests] == ["2", "3"]
    assert refused.errors["response"].startswith("refused XML")
