"""One imported record → the store's Item (crawls.engine.store), by the crawl's own rules.

A CSV or JSONL row names bid fields (crawls.engine.field_rules.BID_FIELDS, typed by
crawls.engine.values as an HTML field of that type is) plus `url`; other keys go to the bid's
`extra`. Identity: a row with a url is keyed by its canonical URL (as HTML crawls key bids),
one without by its reference (as API crawls key theirs: request.item_hash). A bid field the
row does not name keeps its stored value (a partial item). An OCDS release or record is mapped
by crawls.engine.ocds_mapping, keyed by its ocid, as an OCDS source's crawl keys it.
Pure Python (no Django).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from crawls.engine import normalize, urls
from crawls.engine import ocds_mapping as mapping
from crawls.engine.field_rules import BID_FIELD_TYPES, BID_FIELDS, FieldRule
from crawls.engine.request import item_hash
from crawls.engine.store import Item
from crawls.engine.values import convert

EXTRA_KEY_CHARS = 100
EXTRA_VALUE_CHARS = 10_000
_INT_MAX = 2**31 - 1
_RULES = {
    name: FieldRule(name=name, css="", attr=None, type=types[0], formats=(), regex=None,
                    required=False)
    for name, types in BID_FIELD_TYPES.items()
}  # fmt: skip


class RowInvalid(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def row_item(data: Mapping[str, Any], *, base_url: str, tz: ZoneInfo) -> Item:
    """The Item of one CSV or JSONL row; RowInvalid names the first bad field."""
    fields: dict[str, object] = {}
    for name, value in data.items():
        key = str(name).strip()
        if key == "url" or not key:
            continue
        if key in BID_FIELDS:
            fields[key] = _typed(key, value, tz)
        else:
            fields[key[:EXTRA_KEY_CHARS]] = _extra(key, value)
    title = fields.get("title")
    if not isinstance(title, str) or not title:
        raise RowInvalid("title", "a bid needs a title")
    reference = fields.get("reference")
    url = data.get("url")
    url = url.strip() if isinstance(url, str) else url
    if url:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise RowInvalid("url", "an http(s) URL")
        try:
            canonical = urls.canonicalize(url)
        except ValueError as exc:
            raise RowInvalid("url", str(exc)) from None
        hashed = urls.url_hash(canonical)
    elif isinstance(reference, str) and reference:
        canonical, hashed = f"{base_url}#{reference}", item_hash(reference)
    else:
        raise RowInvalid("url", "a row needs a url or a reference")
    return Item(
        url=canonical,
        url_hash=hashed,
        fields=fields,
        content_hash=urls.content_hash(fields),
        partial=not set(BID_FIELDS) <= fields.keys(),
    )


# Fields whose values repeat down a file (a few departments, dates, currencies, statuses):
# their typed value is kept per (field, text, zone); titles, references and numbers are not.
_CACHED = frozenset(
    {"department", "post_date", "deadline", "currency", "status", "procurement_method",
     "classifications"}
)  # fmt: skip


def _typed(name: str, value: object, tz: ZoneInfo) -> object:
    if name in _CACHED and isinstance(value, str):
        typed = _typed_text(name, value, tz)
        return list(typed) if isinstance(typed, tuple) else typed
    return _typed_value(name, value, tz)


@functools.lru_cache(maxsize=4096)
def _typed_text(name: str, value: str, tz: ZoneInfo) -> object:
    """_typed_value of a text, kept (lists as tuples: the cached value is shared)."""
    typed = _typed_value(name, value, tz)
    return tuple(typed) if isinstance(typed, list) else typed


def _typed_value(name: str, value: object, tz: ZoneInfo) -> object:
    if value is None or (isinstance(value, str) and not value.strip()):
        return [] if name == "classifications" else None
    if name == "classifications":
        codes = normalize.classification_codes(value)
        if not codes:
            raise RowInvalid(name, "SCHEME:ID codes (separated by ; or ,)")
        return codes
    if isinstance(value, dict | list | bool):
        raise RowInvalid(name, f"a {BID_FIELD_TYPES[name][0]}, not {type(value).__name__}")
    text = str(value)
    if name == "currency":
        code = normalize.currency_code(text)
        if code is None:
            raise RowInvalid(name, f"{text[:40]!r} is not an ISO 4217 currency")
        return code
    if name == "status":
        return normalize.status_code(text)
    try:
        typed = convert(text, _RULES[name], tz)
    except ValueError as exc:
        raise RowInvalid(name, str(exc)) from None
    if name == "views" and not 0 <= typed <= _INT_MAX:  # type: ignore[operator]
        raise RowInvalid(name, f"a whole number from 0 to {_INT_MAX}")
    if name == "amount" and isinstance(typed, Decimal) and abs(typed) >= mapping.AMOUNT_LIMIT:
        raise RowInvalid(name, f"less than {mapping.AMOUNT_LIMIT}")
    return typed


def _extra(name: str, value: object) -> object:
    if isinstance(value, str) and len(value) > EXTRA_VALUE_CHARS:
        raise RowInvalid(name, f"longer than {EXTRA_VALUE_CHARS} characters")
    return value


def ocds_items(
    package: str, data: dict[str, Any], *, base_url: str, tz: ZoneInfo
) -> tuple[list[Item], list[tuple[str, str]]]:
    """The Items of one release (a partial item: the fields it gives) or of one record (its
    embedded releases, else its compiledRelease whole); problems as (field, message)."""
    if package == "releases":
        candidates = [(data, data.get("ocid"), False)]
    else:
        embedded = [r for r in mapping.as_list(data.get("releases")) if isinstance(r, dict)]
        linked = [r for r in embedded if "ocid" not in r and "url" in r]
        embedded = [r for r in embedded if r not in linked]
        if embedded:
            candidates = [(r, r.get("ocid") or data.get("ocid"), False) for r in embedded]
        elif isinstance(data.get("compiledRelease"), dict):
            candidates = [(data["compiledRelease"], data.get("ocid"), True)]
        else:
            reason = "linked releases are not fetched" if linked else "no releases"
            return [], [("releases", f"a record with {reason} and no compiledRelease")]
    items, problems = [], []
    for release_data, ocid, whole in candidates:
        if not isinstance(ocid, str) or not ocid.strip():
            problems.append(("ocid", "a release without an ocid"))
            continue
        ocid = ocid.strip()
        when = None
        if release_data.get("date") is not None:
            try:
                when = mapping.parse_datetime(release_data["date"], mapping.UTC_ZONE)
                when = when.astimezone(UTC)
            except ValueError as exc:
                problems.append(("date", str(exc)))
        ident = release_data.get("id")
        ident = str(ident) if isinstance(ident, str | int) and not isinstance(ident, bool) else ""
        release = mapping.Release(
            where="", data=release_data, ocid=ocid, when=when, id=ident, whole=whole
        )
        record = mapping.record(ocid, release, release_data, timezone=tz, url=base_url)
        if not whole and record.fields.get("reference") == ocid:
            # The engine reads a release merged with the package's earlier ones (their
            # tender.id included); one read alone without tender.id keeps the stored reference.
            record.fields.pop("reference")
        problems.extend(record.errors.items())
        link = record.url if record.url.startswith(("http://", "https://")) else ""
        items.append(
            Item(
                url=link or f"{base_url}#{ocid}",
                url_hash=item_hash(ocid),
                fields=record.fields,
                content_hash=urls.content_hash(record.fields),
                version=record.version,
                partial=record.partial,
            )
        )
    return items, problems
