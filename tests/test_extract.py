"""Page extraction: links, typed fields, encodings, the per-page budget (conversions:
test_convert.py; canonical URLs and hashes: test_canonical_urls.py)."""

import time
from datetime import UTC, date, datetime
from decimal import Decimal
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import pytest

from crawls.engine.extract import extract
from crawls.engine.rules import rules_parse

SEOUL = ZoneInfo("Asia/Seoul")
BOARD = "https://www.example.go.kr/bbs/list.do?bbsId=BID&page=2"

LISTING_HTML = """<!DOCTYPE html>
<html lang="ko"><head><meta charset="utf-8"><title>입찰공고 목록</title>
<link rel="next" href="list.do?bbsId=BID&amp;page=3"></head>
<body>
<ul class="gnb"><li><a href="/main.do">홈</a></li>
<li><a href="/bbs/list.do?bbsId=NEWS">소식</a></li></ul>
<table class="board">
<thead><tr><th>번호</th><th>제목</th><th>부서</th><th>등록일</th><th>조회</th></tr></thead>
<tbody>
<tr><td>10</td><td class="subject">
    <a href="view.do?bbsId=BID&amp;nttId=10">2026년 도로 보수공사 입찰 공고</a></td>
    <td>도로과</td><td>2026.11.23</td><td>1,234</td></tr>
<tr><td>9</td><td class="subject">
    <a href="/bbs/view.do?bbsId=BID&amp;nttId=9#comments">교량 점검 용역</a></td>
    <td>건설과</td><td>2026.11.22</td><td>87</td></tr>
<tr><td>8</td><td class="subject">
    <a href="https://www.example.go.kr/bbs/view.do?bbsId=BID&amp;nttId=8">청사 청소 용역</a></td>
    <td>총무과</td><td>2026.11.21</td><td>5</td></tr>
<tr><td>7</td><td class="subject"><a href="view.do?bbsId=BID&amp;nttId=10">중복 링크</a></td>
    <td>도로과</td><td>2026.11.20</td><td>3</td></tr>
<tr><td>6</td><td class="subject"><a href="javascript:fn_view('6')">스크립트 링크</a></td>
    <td>도로과</td><td>2026.11.19</td><td>3</td></tr>
<tr><td>5</td><td class="subject"><a href="mailto:bid@example.go.kr">메일 문의</a></td>
    <td>계약과</td><td>2026.11.18</td><td>2</td></tr>
<tr><td>4</td><td class="subject"><a href="#none" onclick="fn_view('4')">자리표시 링크</a></td>
    <td>계약과</td><td>2026.11.17</td><td>2</td></tr>
<tr><td>3</td><td class="subject"><a href="
    ./view.do?bbsId=BID&amp;nttId=3 ">공백 있는 링크</a></td>
    <td>계약과</td><td>2026.11.16</td><td>9</td></tr>
<tr><td>2</td><td class="subject"><a href="//files.example.go.kr/notice/2">다른 호스트</a></td>
    <td>계약과</td><td>2026.11.15</td><td>1</td></tr>
<tr><td>1</td><td class="subject"><a>링크 없음</a></td>
    <td>계약과</td><td>2026.11.14</td><td>0</td></tr>
</tbody></table>
<div class="paging">
<a href="?bbsId=BID&amp;page=1" class="first">처음</a>
<a href="list.do?bbsId=BID&amp;page=1">1</a><strong>2</strong>
<a href="list.do?bbsId=BID&amp;page=3">3</a>
<a href="javascript:goPage(4)">4</a>
<a href="list.do?bbsId=BID&amp;page=11#top" class="next">다음</a>
</div>
</body></html>"""

LISTING_RULES = rules_parse(
    {
        "follow": ["div.paging a", "link[rel=next]"],
        "items": ["table.board td.subject a"],
        "fields": {"title": "h3.view-title"},
    }
)

KOREAN_DETAIL = """<!DOCTYPE html>
<html lang="ko"><head><meta charset="utf-8">
<title>입찰공고 상세</title>
<link rel="canonical" href="/bbs/view.do?bbsId=BID&amp;nttId=10#content">
</head><body><div id="content" class="view">
<h3 class="view-title">
   2026년 서울시 <b>공공시설</b> 유지보수
   용역 입찰 공고 </h3>
<table class="view-info"><tbody>
<tr><th>공고번호</th><td class="ref">공고번호: R26BK01234567-000</td></tr>
<tr><th>담당부서</th><td class="dept">재무과&nbsp;계약팀</td></tr>
<tr><th>조회수</th><td class="hits">조회수 1,234</td></tr>
<tr><th>등록일</th><td class="date">2026.11.23.</td></tr>
<tr><th>추정가격</th><td class="amount">₩1,234,500,000</td></tr>
<tr><th>마감일시</th><td class="deadline">2026-12-01 18:00</td></tr>
<tr><th>개찰일시</th><td class="opening">2026년 12월 2일</td></tr>
</tbody></table>
<p class="files"><a class="file" href="../files/download.do?id=77#page=2">공고문.hwp</a></p>
</div></body></html>"""

KOREAN_RULES = rules_parse(
    {
        "fields": {
            "title": "h3.view-title",
            "reference": {"css": "td.ref", "regex": r"공고번호:\s*(\S+)"},
            "department": "td.dept",
            "views": "td.hits",
            "post_date": "td.date",
            "amount": "td.amount",
            "deadline": "td.deadline",
            "opening": {"css": "td.opening", "type": "datetime"},
            "attachment": {"css": "a.file", "attr": "href"},
            "manager": "td.manager",
        },
        "timezone": "Asia/Seoul",
    }
)

ENGLISH_DETAIL = """<html><head><title>Notice</title>
<base href="https://procurement.example.org/notices/">
<link rel="CANONICAL" href="2026/118">
</head><body>
<h1 class="title">Supply of   road salt (winter 2026/27)</h1>
<dl>
<dt>Reference</dt><dd id="ref">PRC-2026-118</dd>
<dt>Department</dt><dd id="dept">Department: Highways &amp; Transport</dd>
<dt>Views</dt><dd id="views">1 234 views</dd>
<dt>Value</dt><dd id="value">KRW 12,345,000</dd>
<dt>Published</dt><dd id="published">23 Nov 2026</dd>
<dt>Closing</dt>
<dd id="closing"><time datetime="2026-12-01T12:00:00+00:00">1 December 2026, noon</time></dd>
</dl></body></html>"""

ENGLISH_RULES = rules_parse(
    {
        "fields": {
            "title": "h1.title",
            "reference": "#ref",
            "department": {"css": "#dept", "regex": r"Department:\s*(.+)"},
            "views": {"css": "#views", "regex": r"([\d ]+) views"},
            "amount": "#value",
            "post_date": {"css": "#published", "formats": ["%d %b %Y"]},
            "deadline": {"css": "#closing time", "attr": "datetime"},
        },
        "timezone": "Europe/London",
    }
)


# --- links -----------------------------------------------------------------------------------


def test_listing_page_gives_absolute_item_and_follow_links_in_order():
    page = extract(LISTING_HTML, url=BOARD, rules=LISTING_RULES, want_fields=False)

    assert page.items == [
        "https://www.example.go.kr/bbs/view.do?bbsId=BID&nttId=10",
        "https://www.example.go.kr/bbs/view.do?bbsId=BID&nttId=9",
        "https://www.example.go.kr/bbs/view.do?bbsId=BID&nttId=8",
        "https://www.example.go.kr/bbs/view.do?bbsId=BID&nttId=3",
        "https://files.example.go.kr/notice/2",
    ]
    assert page.follow == [
        "https://www.example.go.kr/bbs/list.do?bbsId=BID&page=1",
        "https://www.example.go.kr/bbs/list.do?bbsId=BID&page=3",
        "https://www.example.go.kr/bbs/list.do?bbsId=BID&page=11",
    ]
    assert page.fields is None
    assert page.errors == {}
    assert page.canonical is None


def test_a_selector_may_name_the_cell_around_the_link():
    rules = rules_parse({"items": ["td.subject"]})

    page = extract(LISTING_HTML, url=BOARD, rules=rules)

    assert page.items[:2] == [
        "https://www.example.go.kr/bbs/view.do?bbsId=BID&nttId=10",
        "https://www.example.go.kr/bbs/view.do?bbsId=BID&nttId=9",
    ]
    assert len(page.items) == 5


def test_want_links_false_skips_links():
    page = extract(LISTING_HTML, url=BOARD, rules=LISTING_RULES, want_links=False)

    assert page.follow == []
    assert page.items == []
    assert page.fields == {"title": None}
    assert page.errors == {
        "title": "required field title not found: nothing matches 'h3.view-title'"
    }


def test_base_href_is_honoured_for_links():
    html = """<html><head><base href="https://cdn.example.org/board/"></head><body>
    <a class="i" href="view?id=1">a</a><a class="i" href="/root?id=2">b</a>
    <a class="i" href="../up/3">c</a><a class="i" href="https://other.example.net/4#x">d</a>
    </body></html>"""
    rules = rules_parse({"items": ["a.i"]})

    page = extract(html, url="https://www.example.go.kr/x/y", rules=rules)

    assert page.items == [
        "https://cdn.example.org/board/view?id=1",
        "https://cdn.example.org/root?id=2",
        "https://cdn.example.org/up/3",
        "https://other.example.net/4",
    ]


def test_relative_base_href_resolves_against_the_page():
    html = '<head><base href="/other/dir/"></head><a href="page?n=1">x</a>'

    page = extract(html, url="http://example.com/a/b", rules=rules_parse({"items": ["a"]}))

    assert page.items == ["http://example.com/other/dir/page?n=1"]


# RFC 3986 section 5.4 (fragment-only and empty references are not links to follow).
RFC_BASE = "http://a/b/c/d;p?q"
RFC_REFERENCES = [
    ("g", "http://a/b/c/g"),
    ("./g", "http://a/b/c/g"),
    ("g/", "http://a/b/c/g/"),
    ("/g", "http://a/g"),
    ("//g", "http://g"),
    ("?y", "http://a/b/c/d;p?y"),
    ("g?y", "http://a/b/c/g?y"),
    ("g#s", "http://a/b/c/g"),
    ("g?y#s", "http://a/b/c/g?y"),
    (";x", "http://a/b/c/;x"),
    ("g;x", "http://a/b/c/g;x"),
    (".", "http://a/b/c/"),
    ("./", "http://a/b/c/"),
    ("..", "http://a/b/"),
    ("../", "http://a/b/"),
    ("../g", "http://a/b/g"),
    ("../..", "http://a/"),
    ("../../", "http://a/"),
    ("../../g", "http://a/g"),
    ("../../../g", "http://a/g"),
    ("/./g", "http://a/g"),
    ("/../g", "http://a/g"),
    ("g.", "http://a/b/c/g."),
    (".g", "http://a/b/c/.g"),
    ("g..", "http://a/b/c/g.."),
    ("..g", "http://a/b/c/..g"),
    ("./../g", "http://a/b/g"),
    ("./g/.", "http://a/b/c/g/"),
    ("g/./h", "http://a/b/c/g/h"),
    ("g/../h", "http://a/b/c/h"),
    ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
    ("g;x=1/../y", "http://a/b/c/y"),
    ("g?y/./x", "http://a/b/c/g?y/./x"),
    ("g#s/../x", "http://a/b/c/g"),
    ("https://B.example/x?1#f", "https://B.example/x?1"),
]


@pytest.mark.parametrize(("reference", "expected"), RFC_REFERENCES)
def test_links_resolve_like_rfc_3986_and_urljoin(reference, expected):
    html = f'<a href="{reference}">x</a>'

    page = extract(html, url=RFC_BASE, rules=rules_parse({"items": ["a"]}))

    assert page.items == [expected]
    assert expected == urljoin(RFC_BASE, reference).partition("#")[0]


@pytest.mark.parametrize(
    "href",
    [
        "#top",
        "",
        "   ",
        "javascript:void(0)",
        "JavaScript:fn_view('1')",
        "mailto:bid@example.go.kr",
        "tel:+82-2-120",
        "ftp://files.example.go.kr/a.hwp",
        "data:text/html,hi",
        "http://[::1/broken",
        "http://example.com:port/x",
        "http:///no-host",
    ],
)
def test_links_that_are_not_web_pages_are_ignored(href):
    page = extract(f'<a href="{href}">x</a>', url=BOARD, rules=rules_parse({"follow": ["a"]}))

    assert page.follow == []


# --- fields ----------------------------------------------------------------------------------


def test_korean_detail_page_fields_are_typed():
    page = extract(
        KOREAN_DETAIL, url="https://www.example.go.kr/bbs/view.do?nttId=10", rules=KOREAN_RULES
    )

    assert page.fields == {
        "title": "2026년 서울시 공공시설 유지보수 용역 입찰 공고",
        "reference": "R26BK01234567-000",
        "department": "재무과 계약팀",
        "views": 1234,
        "post_date": date(2026, 11, 23),
        "amount": Decimal("1234500000"),
        "currency": "KRW",  # named by the amount's text (₩1,234,500,000)
        "deadline": datetime(2026, 12, 1, 18, 0, tzinfo=SEOUL),
        "opening": datetime(2026, 12, 2, 0, 0, tzinfo=SEOUL),
        "attachment": "https://www.example.go.kr/files/download.do?id=77",
        "manager": None,
    }
    assert page.fields["deadline"].astimezone(UTC) == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert page.errors == {}
    assert page.canonical == "https://www.example.go.kr/bbs/view.do?bbsId=BID&nttId=10"
    assert page.follow == []
    assert page.items == []


def test_english_detail_page_with_base_and_aware_attribute_datetime():
    page = extract(
        ENGLISH_DETAIL, url="https://procurement.example.org/n?id=118", rules=ENGLISH_RULES
    )

    assert page.fields == {
        "title": "Supply of road salt (winter 2026/27)",
        "reference": "PRC-2026-118",
        "department": "Highways & Transport",
        "views": 1234,
        "amount": Decimal("12345000"),
        "currency": "KRW",  # named by the amount's text (KRW 12,345,000)
        "post_date": date(2026, 11, 23),
        "deadline": datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
    }
    assert page.errors == {}
    assert page.canonical == "https://procurement.example.org/notices/2026/118"


def test_want_fields_false_gives_no_fields():
    page = extract(KOREAN_DETAIL, url=BOARD, rules=KOREAN_RULES, want_fields=False)

    assert page.fields is None
    assert page.errors == {}
    assert page.canonical == "https://www.example.go.kr/bbs/view.do?bbsId=BID&nttId=10"


def test_field_problems_are_reported_per_field_and_the_value_is_none():
    html = """<h1>  </h1><table><tr><td class="hits">many</td><td class="date">12 Dec</td>
    <td class="amount">1,000원 / 2,000원</td></tr></table><a class="file">no href</a>"""
    rules = rules_parse(
        {
            "fields": {
                "title": "h1",
                "views": "td.hits",
                "post_date": {"css": "td.date", "formats": ["%Y-%m-%d"]},
                "amount": "td.amount",
                "attachment": {"css": "a.file", "attr": "href", "required": True},
                "reference": {"css": "td.ref", "required": True},
                "department": "td.dept",
            }
        }
    )

    page = extract(html, url=BOARD, rules=rules)

    assert page.fields == dict.fromkeys(
        ("title", "views", "post_date", "amount", "attachment", "reference", "department")
    )
    assert page.errors == {
        "title": "required field title not found: 'h1' is empty",
        "views": "cannot read 'many' as int: no number in it",
        "post_date": "cannot read '12 Dec' as date with formats ['%Y-%m-%d']",
        "amount": "cannot read '1,000원 / 2,000원' as decimal: several numbers (1,000, 2,000); "
        "add a regex with one group to pick one",
        "attachment": "required field attachment not found: 'a.file' has no 'href' attribute",
        "reference": "required field reference not found: nothing matches 'td.ref'",
    }


def test_a_regex_that_keeps_nothing_leaves_a_required_field_empty():
    rules = rules_parse({"fields": {"title": {"css": "h1", "regex": r"Notice:\s*(.*)"}}})

    page = extract("<h1>Notice:   </h1>", url=BOARD, rules=rules)

    assert page.fields == {"title": None}
    assert page.errors == {"title": "required field title is empty"}


def test_text_is_the_deep_text_without_markup():
    rules = rules_parse({"fields": {"title": "td.subject"}})
    html = (
        '<table><tr><td class="subject"><span class="new">[신규]</span>\n\t'
        '<a href="#">도로\u00a0공사</a></td></tr></table>'
    )

    page = extract(html, url=BOARD, rules=rules)

    assert page.fields == {"title": "[신규] 도로 공사"}


# --- encodings -------------------------------------------------------------------------------

EUC_KR_PAGE = """<html><head>
<meta http-equiv="Content-Type" content="text/html; charset=euc-kr">
<title>입찰</title></head><body>
<h3 class="view-title">똠방각하 청사 보수 입찰 공고</h3>
<table><tr><td class="dept">회계과</td><td class="hits">조회 12</td></tr></table>
</body></html>"""


def test_euc_kr_page_is_decoded_like_a_browser_would_cp949():
    body = EUC_KR_PAGE.encode("cp949")
    with pytest.raises(UnicodeDecodeError):
        "똠".encode("cp949").decode("euc_kr")  # CP949-only: strict EUC-KR would lose it
    rules = rules_parse(
        {"fields": {"title": "h3.view-title", "department": "td.dept", "views": "td.hits"}}
    )

    page = extract(body, url=BOARD, rules=rules)

    assert page.fields == {
        "title": "똠방각하 청사 보수 입찰 공고",
        "department": "회계과",
        "views": 12,
    }


@pytest.mark.parametrize(
    ("declaration", "codec"),
    [
        ('<meta charset="EUC-KR">', "cp949"),
        ("<meta charset=ks_c_5601-1987>", "cp949"),
        ("<meta charset='windows-949'>", "cp949"),
        ('<meta charset="utf-8">', "utf-8"),
        ('<meta charset="iso-8859-1">', "cp1252"),
        ('<meta charset="no-such-charset">', "utf-8"),
        ("", "utf-8"),
    ],
)
def test_meta_charset_decides_how_bytes_are_decoded(declaration, codec):
    text = "입찰 공고 “quoted”" if codec != "cp1252" else "Café “quoted”"
    body = f"<head>{declaration}</head><h1>{text}</h1>".encode(codec)

    page = extract(body, url=BOARD, rules=rules_parse({"fields": {"title": "h1"}}))

    assert page.fields == {"title": text}


def test_utf8_bytes_with_bom_and_invalid_bytes():
    body = b"\xef\xbb\xbf<h1>\xec\x9e\x85\xec\xb0\xb0 \xff ok</h1>"

    page = extract(body, url=BOARD, rules=rules_parse({"fields": {"title": "h1"}}))

    assert page.fields == {"title": "입찰 \ufffd ok"}


def test_text_input_ignores_the_declared_charset():
    page = extract(EUC_KR_PAGE, url=BOARD, rules=rules_parse({"fields": {"title": "h3"}}))

    assert page.fields == {"title": "똠방각하 청사 보수 입찰 공고"}


# --- The per-page budget ---------------------------------------------------------------------


def test_extract_stops_past_its_deadline_naming_the_field_that_ran_over():
    rules = rules_parse({"fields": {"title": "h1", "amount": "td.amount", "views": "td.hits"}})
    html = "<h1>Notice</h1><table><tr><td class=amount>1</td><td class=hits>2</td></tr></table>"
    started: list[str] = []

    def on_step(step: str) -> None:
        started.append(step)
        if step == "amount":  # this field's work outlasts the budget
            time.sleep(0.6)

    page = extract(html, url=BOARD, rules=rules, deadline=time.monotonic() + 0.5, on_step=on_step)

    assert page.timeout == "amount"
    assert started == ["page", "title", "amount"]  # views never started
    assert "views" not in (page.fields or {})


def test_extract_past_its_deadline_while_collecting_links_names_links():
    links = "".join(f'<td class="subject"><a href="/n/{i}">{i}</a></td>' for i in range(200))
    rules = rules_parse({"items": ["td.subject a"]})

    page = extract(
        f"<table><tr>{links}</tr></table>",
        url=BOARD,
        rules=rules,
        deadline=time.monotonic() + 0.5,
        on_step=lambda step: time.sleep(0.6) if step == "links" else None,
    )

    assert page.timeout == "links"
    assert page.items == []


def test_extract_without_a_deadline_reads_everything():
    rules = rules_parse({"fields": {"title": "h1"}})

    page = extract("<h1>Notice</h1>", url=BOARD, rules=rules)

    assert (page.timeout, page.fields) == (None, {"title": "Notice"})
