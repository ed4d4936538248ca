"""The demo board's machine-readable shapes: a paged JSON API behind a key, an XML service shaped
like data.go.kr's 나라장터 입찰공고정보서비스, and an OCDS 1.1 release and record package feed.

Pure functions of (BoardConfig, epoch, the page asked for, the request's origin) that return
bodies; crawls.demo.routes serves them. The tenders come from crawls.demo.tenders, so every shape
publishes the same notices with the same values as the HTML board.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape

from crawls.demo import data
from crawls.demo.data import BoardConfig
from crawls.demo.tenders import CURRENCY, Tender, Version, tenders

DEMO_API_KEY = "demo-api-key-5f1c2b7e"
DEMO_SERVICE_KEY = "DEMO0forest0SERVICE0KEY0data0go0kr0bid0notices0000000000"
API_PATH = "/api/v1/notices"
XML_PATH = "/openapi/BidPublicInfoService/getBidPblancListInfoServc"
OCDS_RELEASES_PATH = "/ocds/releases.json"
OCDS_RECORDS_PATH = "/ocds/records.json"
API_DEFAULT_LIMIT, API_MAX_LIMIT = 20, 100
XML_DEFAULT_ROWS, XML_MAX_ROWS = 10, 1000
PUBLISHER = {"name": "Forest demo board (synthetic data)", "uri": "https://example.invalid/forest"}

DEMO_JSON_RULES: dict[str, Any] = {
    "request": {
        "method": "GET",
        "query": {"page": "{page}", "per_page": "{limit}"},
        "headers": {"X-Api-Key": "{secret.api_key}", "Accept": "application/json"},
    },
    "items": "data",
    "key": "notice_no",
    "link": "url",
    "fields": {
        "title": {"path": "title", "required": True},
        "department": "agency",
        "reference": "notice_no",
        "views": {"path": "views", "type": "int"},
        "amount": {"path": "amount", "type": "decimal"},
        "currency": "currency",
        "status": {"path": "status", "map": {"open": "active", "cancelled": "cancelled"}},
        "post_date": {"path": "posted_on", "type": "date", "formats": ["%Y-%m-%d"]},
        "deadline": {"path": "closes_at", "type": "datetime", "formats": ["%Y-%m-%dT%H:%M:%S%z"]},
    },
    "pagination": {"style": "page", "start": 1, "size": API_MAX_LIMIT, "total": "meta.total"},
    "error": {"when": "error.code", "message": "error.message"},
    "timezone": "Asia/Seoul",
}

_XML_KINDS = {"등록공고": "active", "변경공고": "active", "취소공고": "cancelled"}
DEMO_XML_RULES: dict[str, Any] = {
    "request": {
        "method": "GET",
        "query": {"serviceKey": "{secret.service_key}", "pageNo": "{page}", "numOfRows": "{limit}"},
    },
    "items": "/response/body/items/item",
    "key": "bidNtceNo",
    "link": "bidNtceDtlUrl",
    "fields": {
        "title": {"path": "bidNtceNm", "required": True},
        "department": "dminsttNm",
        "reference": "bidNtceNo",
        "views": {"path": "inqryCnt", "type": "int"},
        "amount": {"path": "presmptPrce", "type": "decimal"},
        "currency": "crncyCd",
        "status": {"path": "ntceKindNm", "map": _XML_KINDS},
        "post_date": {"path": "bidNtceDt", "type": "date", "formats": ["%Y-%m-%d %H:%M:%S"]},
        "deadline": {"path": "bidClseDt", "type": "datetime", "formats": ["%Y-%m-%d %H:%M:%S"]},
    },
    "pagination": {
        "style": "page",
        "start": 1,
        "size": 100,
        "total": "/response/body/totalCount",
    },
    # The service answers a bad key with HTTP 200 and another envelope: read both.
    "error": {
        "when": "/response/header/resultCode"
        " | /OpenAPI_ServiceResponse/cmmMsgHeader/returnReasonCode",
        "ok": ["00"],
        "message": "/response/header/resultMsg"
        " | /OpenAPI_ServiceResponse/cmmMsgHeader/returnAuthMsg",
    },
    "timezone": "Asia/Seoul",
}

DEMO_OCDS_RULES: dict[str, Any] = {}


@dataclass(frozen=True)
class Slice:
    """Which tenders a page shows, and whether it is flaky (500 once) or slow."""

    items: tuple[Tender, ...]
    total: int
    flaky: bool
    slow: bool


def page_slice(config: BoardConfig, epoch: int, offset: int, limit: int) -> Slice:
    everything = tenders(config, epoch)
    items = everything[offset : offset + limit]
    return Slice(
        items,
        len(everything),
        flaky=any(t.notice.status == data.FLAKY for t in items),
        slow=any(t.notice.slow for t in items),
    )


# --- JSON API -------------------------------------------------------------------------------------


def cursor_encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> int:
    """The offset a cursor stands for; ValueError for one this API did not make."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc
    prefix, _, number = text.partition(":")
    if prefix != "o" or not number.isdigit():
        raise ValueError("invalid cursor")
    return int(number)


def api_item(tender: Tender, origin: str) -> dict[str, Any]:
    n = tender.notice
    return {
        "id": n.id,
        "notice_no": n.reference,
        "title": n.title,
        "agency": n.department,
        "views": n.views,
        "amount": int(n.amount),
        "currency": CURRENCY,
        "posted_on": n.post_date.isoformat(),
        "closes_at": n.deadline.isoformat(),
        "status": "cancelled" if tender.status == "cancelled" else "open",
        "url": f"{origin}{n.path}",
    }


def api_page(
    config: BoardConfig, epoch: int, *, style: str, offset: int, limit: int, origin: str
) -> tuple[dict[str, Any], Slice, str | None]:
    """(body, slice, next URL) of GET /api/v1/notices; style: "page", "offset" or "cursor"."""
    part = page_slice(config, epoch, offset, limit)
    end = offset + len(part.items)
    more = end < part.total
    next_url = None
    if more:
        query = {
            "page": f"page={offset // limit + 2}&per_page={limit}",
            "offset": f"offset={end}&limit={limit}",
            "cursor": f"cursor={cursor_encode(end)}&limit={limit}",
        }[style]
        next_url = f"{origin}{API_PATH}?{query}"
    meta: dict[str, Any] = {
        "total": part.total,
        "count": len(part.items),
        "offset": offset,
        "limit": limit,
    }
    if style == "page":
        meta["page"] = offset // limit + 1
    meta["next_cursor"] = cursor_encode(end) if more else None
    body = {
        "data": [api_item(t, origin) for t in part.items],
        "meta": meta,
        "links": {"next": next_url},
    }
    return body, part, next_url


def api_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# --- XML service (data.go.kr) ---------------------------------------------------------------------


def _xml_kind(tender: Tender) -> str:
    if tender.status == "cancelled":
        return "취소공고"
    return "변경공고" if tender.amended else "등록공고"


def _xml_item(tender: Tender, origin: str) -> str:
    n = tender.notice
    amendments = sum(v.tag != "tender" for v in tender.versions)
    values = (
        ("bidNtceNo", n.reference),
        ("bidNtceOrd", f"{amendments:03d}"),
        ("ntceKindNm", _xml_kind(tender)),
        ("bidNtceNm", n.title),
        ("ntceInsttNm", "조달청"),
        ("dminsttNm", n.department),
        ("bidNtceDt", tender.published.strftime("%Y-%m-%d %H:%M:%S")),
        ("bidClseDt", n.deadline.strftime("%Y-%m-%d %H:%M:%S")),
        ("presmptPrce", str(int(n.amount))),
        ("crncyCd", CURRENCY),
        ("inqryCnt", str(n.views)),
        ("bidNtceDtlUrl", f"{origin}{n.path}"),
    )
    return "<item>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in values) + "</item>"


def xml_page(
    config: BoardConfig, epoch: int, *, page: int, rows: int, origin: str
) -> tuple[bytes, Slice]:
    """The body of getBidPblancListInfoServc's page `page` of `rows` items, and its slice."""
    part = page_slice(config, epoch, (page - 1) * rows, rows)
    items = "".join(_xml_item(t, origin) for t in part.items)
    text = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<response><header>'
        "<resultCode>00</resultCode><resultMsg>NORMAL SERVICE.</resultMsg></header><body>"
        f"<items>{items}</items><numOfRows>{rows}</numOfRows><pageNo>{page}</pageNo>"
        f"<totalCount>{part.total}</totalCount></body></response>\n"
    )
    return text.encode(), part


def xml_error(auth_msg: str, reason_code: str) -> bytes:
    """The service's error envelope (answered with HTTP 200)."""
    return (
        "<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>"
        f"<returnAuthMsg>{escape(auth_msg)}</returnAuthMsg>"
        f"<returnReasonCode>{escape(reason_code)}</returnReasonCode>"
        "</cmmMsgHeader></OpenAPI_ServiceResponse>\n"
    ).encode()


# --- OCDS -----------------------------------------------------------------------------------------


def _release(tender: Tender, index: int, version: Version) -> dict[str, Any]:
    n = tender.notice
    party = {"id": f"KR-DEMO-{data._hash(n.department) % 10**6:06d}", "name": n.department}
    cpv, description = tender.cpv
    return {
        "ocid": tender.ocid,
        "id": f"{tender.ocid}-{index:02d}",
        "date": version.date.isoformat(),
        "tag": [version.tag],
        "initiationType": "tender",
        "language": "ko",
        "parties": [{**party, "roles": ["buyer", "procuringEntity"]}],
        "buyer": party,
        "tender": {
            "id": n.reference,
            "title": n.title,
            "status": "cancelled" if version.cancelled else "active",
            "value": {"amount": int(version.amount), "currency": CURRENCY},
            "datePublished": tender.published.isoformat(),
            "tenderPeriod": {
                "startDate": tender.published.isoformat(),
                "endDate": version.deadline.isoformat(),
            },
            "procurementMethod": tender.procurement_method,
            "procuringEntity": party,
            "items": [
                {
                    "id": "1",
                    "description": n.title,
                    "classification": {"scheme": "CPV", "id": cpv, "description": description},
                }
            ],
        },
    }


def releases(config: BoardConfig, epoch: int) -> list[dict[str, Any]]:
    """Every release of `epoch`, newest first (by date, then ocid and id)."""
    return list(_releases(config, epoch))


@lru_cache(maxsize=4)
def _releases(config: BoardConfig, epoch: int) -> tuple[dict[str, Any], ...]:
    result = [
        _release(t, index, v)
        for t in tenders(config, epoch)
        for index, v in enumerate(t.versions, start=1)
    ]
    result.sort(key=lambda r: (r["date"], int(r["ocid"].rsplit("-", 1)[1]), r["id"]), reverse=True)
    return tuple(result)


def _package(path: str, page: int, pages: int, origin: str, epoch: int) -> dict[str, Any]:
    links = {}
    if page < pages:
        links["next"] = f"{origin}{path}?page={page + 1}"
    if page > 1:
        links["prev"] = f"{origin}{path}?page={page - 1}"
    return {
        "uri": f"{origin}{path}?page={page}",
        "version": "1.1",
        "publishedDate": data.epoch_time(epoch).isoformat(),
        "publisher": PUBLISHER,
        "license": "https://creativecommons.org/publicdomain/zero/1.0/",
        "publicationPolicy": "https://example.invalid/forest/publication-policy",
        "links": links,
    }


def _pages(count: int, size: int) -> int:
    return max(1, -(-count // size))


def release_package(config: BoardConfig, epoch: int, *, page: int, origin: str) -> dict[str, Any]:
    """Page `page` of the release package feed (config.per_page releases a page)."""
    everything = _releases(config, epoch)
    size = config.per_page
    package = _package(OCDS_RELEASES_PATH, page, _pages(len(everything), size), origin, epoch)
    package["releases"] = everything[(page - 1) * size : page * size]
    return package


def record_package(config: BoardConfig, epoch: int, *, page: int, origin: str) -> dict[str, Any]:
    """Page `page` of the record package (config.per_page records a page, newest tender first):
    each record with its releases (oldest first) and the compiled release."""
    everything = tenders(config, epoch)
    size = config.per_page
    package = _package(OCDS_RECORDS_PATH, page, _pages(len(everything), size), origin, epoch)
    package["packages"] = [f"{origin}{OCDS_RELEASES_PATH}"]
    records = []
    for t in everything[(page - 1) * size : page * size]:
        embedded = [_release(t, i, v) for i, v in enumerate(t.versions, start=1)]
        compiled = {**embedded[-1], "id": f"{t.ocid}-compiled", "tag": ["compiled"]}
        records.append({"ocid": t.ocid, "releases": embedded, "compiledRelease": compiled})
    package["records"] = records
    return package


def package_slice(config: BoardConfig, epoch: int, package: dict[str, Any]) -> Slice:
    """Whether an OCDS page is flaky or slow: as the tenders it shows are."""
    shown = {int(r["ocid"].rsplit("-", 1)[1]) for r in package.get("releases", [])}
    shown |= {int(r["ocid"].rsplit("-", 1)[1]) for r in package.get("records", [])}
    items = tuple(t for t in tenders(config, epoch) if t.notice.id in shown)
    return Slice(
        items,
        len(items),
        flaky=any(t.notice.status == data.FLAKY for t in items),
        slow=any(t.notice.slow for t in items),
    )
