"""URL canonicalisation and the url and content hashes that identify a bid."""

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from crawls.engine.urls import canonicalize, content_hash, url_hash

SEOUL = ZoneInfo("Asia/Seoul")


# --- canonical URLs and hashes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "ignore", "expected"),
    [
        ("https://example.com/a#frag", (), "https://example.com/a"),
        ("https://example.com/list?b=2&a=1&a=0", (), "https://example.com/list?a=0&a=1&b=2"),
        (
            "https://example.com/list?utm_source=x&page=2&utm_source=y&a=1&a=2",
            ("utm_source",),
            "https://example.com/list?a=1&a=2&page=2",
        ),
        ("https://example.com/?utm_source=x", ("utm_source",), "https://example.com/"),
        ("HTTPS://WWW.Example.COM/Path/Case", (), "https://www.example.com/Path/Case"),
        ("http://example.com:80/x", (), "http://example.com/x"),
        ("https://example.com:443/x", (), "https://example.com/x"),
        ("http://example.com:443/x", (), "http://example.com:443/x"),
        ("https://example.com:8443/x", (), "https://example.com:8443/x"),
        ("https://example.com", (), "https://example.com/"),
        ("https://example.com/a/./b/../c", (), "https://example.com/a/c"),
        ("https://example.com/a b?q=a b", (), "https://example.com/a%20b?q=a+b"),
        (
            "https://예시.kr/게시판?검색어=입찰&page=1",
            ("검색어",),
            "https://xn--vv4b11d.kr/%EA%B2%8C%EC%8B%9C%ED%8C%90?page=1",
        ),
        ("  https://example.com/x  ", (), "https://example.com/x"),
    ],
)
def test_canonicalize(url, ignore, expected):
    assert canonicalize(url, ignore_params=ignore) == expected


@pytest.mark.parametrize(
    "url",
    [
        "HTTP://Example.COM:80/a/../b?b=2&a=1#x",
        "https://www.example.go.kr/bbs/view.do?nttId=10&bbsId=BID&utm_source=list",
        "https://예시.kr/경로?검색어=입찰 공고&x=%7e",
        "http://user:Pass@Example.com:8080/p;x?q",
        "https://example.com/?a=&b",
    ],
)
def test_canonicalize_is_idempotent(url):
    once = canonicalize(url, ignore_params=["utm_source"])

    assert canonicalize(once, ignore_params=["utm_source"]) == once


def test_equivalent_urls_share_a_hash():
    a = canonicalize("https://Example.com:443/bbs/view.do?b=2&a=1#top", ignore_params=["utm"])
    b = canonicalize("https://example.com/bbs/view.do?a=1&utm=list&b=2", ignore_params=["utm"])

    assert a == b
    assert url_hash(a) == url_hash(b)
    assert url_hash(a) != url_hash(canonicalize("https://example.com/bbs/view.do?a=1&b=3"))


def test_url_hash_is_16_bytes_of_blake2b():
    digest = url_hash("https://example.com/")

    assert len(digest) == 16
    assert digest == hashlib.blake2b(b"https://example.com/", digest_size=16).digest()
    assert (
        url_hash("https://예시.kr/")
        == hashlib.blake2b("https://예시.kr/".encode(), digest_size=16).digest()
    )


BID = {
    "title": "2026년 도로 보수공사 입찰 공고",
    "department": "도로과",
    "views": 1234,
    "amount": Decimal("1234500000.50"),
    "post_date": date(2026, 11, 23),
    "deadline": datetime(2026, 12, 1, 18, 0, tzinfo=SEOUL),
    "reference": None,
    "extra": {"attachment": "https://example.com/f.hwp"},
}


def test_content_hash_is_stable():
    assert content_hash(BID) == "910848dae3cad4ce534dea2fb24dbe43"
    assert len(content_hash(BID)) == 32


def test_content_hash_ignores_key_order_and_representation():
    reordered = dict(reversed(list(BID.items())))
    same_values = {
        **BID,
        "amount": Decimal("1234500000.500"),
        "deadline": datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
    }

    assert content_hash(reordered) == content_hash(BID)
    assert content_hash(same_values) == content_hash(BID)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("views", 1235),
        ("amount", Decimal("1234500001")),
        ("deadline", datetime(2026, 12, 1, 18, 0, tzinfo=UTC)),
        ("post_date", date(2026, 11, 24)),
        ("reference", ""),
        ("title", "2026년 도로 보수공사 입찰 공고 (정정)"),
    ],
)
def test_content_hash_changes_with_any_value(name, value):
    assert content_hash({**BID, name: value}) != content_hash(BID)
