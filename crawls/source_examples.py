"""A complete example of rules for each kind of source: what the dashboard's rules editor starts
from (docs/sources.md describes every key). Each one validates with kinds.rules_parse."""

from __future__ import annotations

RULES_EXAMPLES: dict[str, dict[str, object]] = {
    "html": {
        "follow": ["nav.pagination a"],
        "items": ["table.notices td.title a"],
        "fields": {
            "title": {"css": "h1.notice-title", "type": "text", "required": True},
            "department": "dd.department",
            "reference": "dd.reference",
            "amount": {"css": "dd.amount", "type": "decimal", "regex": r"\d[\d,]*(?:\.\d+)?"},
            "post_date": {"css": "dd.post-date", "type": "date", "formats": ["%Y-%m-%d"]},
            "deadline": {"css": "dd.deadline", "type": "datetime", "formats": ["%Y-%m-%d %H:%M"]},
        },
        "timezone": "Asia/Seoul",
    },
    "json": {
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
            "department": "ntceInsttNm",
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
    },
    "xml": {
        "request": {
            "method": "GET",
            "query": {
                "serviceKey": "{secret.service_key}",
                "pageNo": "{page}",
                "numOfRows": "{limit}",
            },
        },
        "items": "//body/items/item",
        "key": "bidNtceNo",
        "link": "bidNtceDtlUrl",
        "fields": {
            "title": "bidNtceNm",
            "department": "ntceInsttNm",
            "amount": {"path": "presmptPrce", "type": "decimal"},
            "post_date": {"path": "bidNtceDt", "type": "date", "formats": ["%Y-%m-%d %H:%M:%S"]},
        },
        "pagination": {
            "style": "page",
            "start": 1,
            "size": 100,
            "total": "//body/totalCount",
            "max_pages": 500,
        },
        "error": {"when": "//header/resultCode", "ok": ["00"], "message": "//header/resultMsg"},
        "timezone": "Asia/Seoul",
    },
    "ocds": {"timezone": "UTC", "max_pages": 1000},
}
