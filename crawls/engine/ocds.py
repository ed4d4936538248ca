"""OCDS sources: a release or record package feed read into bids without user rules.

A package's releases are grouped by ocid and applied in release order ((date, id)): each
release gives one ``Record`` holding the compiled state after it (the releases before it in
this package merged with the OCDS merge rules), ``partial`` so that fields no release gave keep
their stored values, and versioned ``"<UTC date>|<release id>"`` so that the store applies them
oldest first (each a revision) and skips any older than the bid it holds. A record package gives
its embedded releases the same way, else its ``compiledRelease`` (a whole state, not partial);
linked releases (a URL only) are reported, not fetched. ``links.next`` pages the feed up to
``max_pages``.

Mapping (OCDS 1.1): ocid → key; tender.id (else ocid, when there is a tender) → reference;
tender.title → title; buyer (else tender.procuringEntity, else the party with that role)
name → department; tender.value amount and currency; tender.datePublished → post_date (a date
in the rules' timezone); tender.tenderPeriod.endDate → deadline; tender.status and the
release's tag → status; tender.procurementMethod; tender.items' classifications. A bad value
leaves its field None with an entry in ``Record.errors``. Runs in the sandbox's child (no
Django settings: the depth bound is MAX_DEPTH, not JSON_MAX_DEPTH). This module reads the
package and merges its releases; ``ocds_mapping`` maps one compiled release to bid fields.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crawls import bounds
from crawls.engine import ocds_mapping as mapping
from crawls.engine import urls
from crawls.engine.extract import Page
from crawls.engine.ocds_mapping import AMOUNT_LIMIT as AMOUNT_LIMIT
from crawls.engine.ocds_mapping import DESCRIPTION_LENGTH as DESCRIPTION_LENGTH
from crawls.engine.ocds_mapping import LENGTHS as LENGTHS
from crawls.engine.ocds_mapping import UTC_ZONE, Json
from crawls.engine.request import Request
from crawls.engine.rule_checks import kind as kind_of_value
from crawls.engine.rules import ROOT, Limits, RulesError

MAX_PAGES = 1000  # default cap on the pages one crawl follows through links.next
MAX_PAGES_LIMIT = 100_000  # the most a source may ask for
# How deep a feed may nest (bounds.text_check_depth): releases sit about 8 levels down and
# extensions add a few; a feed past this is refused, not parsed.
MAX_DEPTH = 64
MAX_ERRORS = 50  # problems listed per page (linked releases, releases without an ocid...)
RESPONSE = "response"  # Page.errors key of problems with the document as a whole
NEXT = "links.next"

_KEYS = ("timezone", "max_pages")


@dataclass(frozen=True)
class OcdsRules:
    """An OCDS source's rules: the timezone of dates without one, the cap on pages."""

    timezone: ZoneInfo = UTC_ZONE
    max_pages: int = MAX_PAGES


def rules_parse(data: object, *, limits: Limits | None = None) -> OcdsRules:
    """Validate `{}` or `{"timezone": ..., "max_pages": ...}`; RulesError names each problem."""
    del limits  # nothing here is sized by the rules limits
    if not isinstance(data, Mapping):
        raise RulesError({ROOT: f"rules must be a JSON object, not {kind_of_value(data)}"})
    errors: dict[str, str] = {}
    for key in data:
        if key not in _KEYS:
            errors[str(key)] = f"unknown key {key!r}; expected one of: {', '.join(_KEYS)}"
    timezone = _timezone(data.get("timezone", "UTC"), errors)
    max_pages = data.get("max_pages", MAX_PAGES)
    if isinstance(max_pages, bool) or not isinstance(max_pages, int):
        errors["max_pages"] = f"max_pages must be a whole number, not {kind_of_value(max_pages)}"
    elif not 1 <= max_pages <= MAX_PAGES_LIMIT:
        errors["max_pages"] = f"max_pages must be between 1 and {MAX_PAGES_LIMIT}, not {max_pages}"
    if errors or timezone is None:
        raise RulesError(errors)
    return OcdsRules(timezone=timezone, max_pages=max_pages)


def rules_dump(parsed: OcdsRules) -> Json:
    """The canonical JSON form: every key present."""
    return {"timezone": parsed.timezone.key, "max_pages": parsed.max_pages}


def _timezone(value: object, errors: dict[str, str]) -> ZoneInfo | None:
    if isinstance(value, str) and value.strip():
        try:
            return ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            pass
    shown = repr(value) if isinstance(value, str) else kind_of_value(value)
    errors["timezone"] = f"timezone must be an IANA time zone name such as 'UTC', not {shown}"
    return None


class _OutOfTime(Exception):
    def __init__(self, step: str):
        super().__init__(step)
        self.step = step


def read(
    body: bytes,
    *,
    rules: OcdsRules,
    url: str,
    request: Request,
    status: int = 200,
    deadline: float | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Page:
    """Read one package: its releases as Records (see the module's docstring), the next page.

    Past `deadline` (time.monotonic()) it stops between releases and names the release in
    Page.timeout; what was read before stays in the page."""
    page = Page()
    if status >= 400:
        page.errors[RESPONSE] = f"HTTP {status}: not an OCDS package"
        return page
    if on_step is not None:
        on_step(RESPONSE)
    package = _package(body, page)
    if package is None:
        return page
    step = RESPONSE

    def enter(name: str) -> None:
        nonlocal step
        if deadline is not None and time.monotonic() > deadline:
            raise _OutOfTime(step)
        step = name
        if on_step is not None:
            on_step(name)

    try:
        enter(RESPONSE)
        releases = _releases(package, page, enter)
        by_ocid: dict[str, list[mapping.Release]] = {}
        for release in releases:
            by_ocid.setdefault(release.ocid, []).append(release)
        for ocid, group in by_ocid.items():
            group.sort(key=lambda r: (r.version, r.id))  # undated first, then (date, id)
            state: Json = {}
            for release in group:
                enter(release.where)
                state = release.data if release.whole else merge(state, release.data)
                page.records.append(
                    mapping.record(ocid, release, state, timezone=rules.timezone, url=url)
                )
        enter(NEXT)
        _next(package, page, rules=rules, url=url, request=request)
    except _OutOfTime as out:
        page.timeout = out.step
    if len(page.errors) > MAX_ERRORS:
        listed = dict(list(page.errors.items())[:MAX_ERRORS])
        listed["errors"] = f"{len(page.errors) - MAX_ERRORS} more problems not listed"
        page.errors = listed
    return page


def _package(body: bytes, page: Page) -> Json | None:
    """The package as parsed JSON; None (with the reason in page.errors) when it is none."""
    try:
        bounds.text_check_depth(body, MAX_DEPTH)
        data = json.loads(body, parse_float=Decimal, parse_constant=_no_constant)
    except bounds.TooDeep as exc:
        page.errors[RESPONSE] = f"not read: {exc}"
        return None
    except (ValueError, UnicodeDecodeError) as exc:
        page.errors[RESPONSE] = f"not JSON: {exc}"
        return None
    if not isinstance(data, dict) or not (
        isinstance(data.get("releases"), list) or isinstance(data.get("records"), list)
    ):
        why = (
            "no list of releases or records"
            if isinstance(data, dict)
            else f"the document is {kind_of_value(data)}, not an object"
        )
        page.errors[RESPONSE] = f"not an OCDS release or record package: {why}"
        return None
    return data


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _releases(package: Json, page: Page, enter: Callable[[str], None]) -> list[mapping.Release]:
    """Every release of the package that can be applied; problems with the others in page.errors."""
    found: list[mapping.Release] = []
    if isinstance(package.get("releases"), list):
        for index, data in enumerate(package["releases"]):
            where = f"releases[{index}]"
            enter(where)
            if (release := _release(data, where, page)) is not None:
                found.append(release)
        return found
    for index, record in enumerate(package["records"]):
        where = f"records[{index}]"
        enter(where)
        if not isinstance(record, dict):
            page.errors[where] = f"a record must be an object, not {kind_of_value(record)}"
            continue
        embedded = []
        for position, data in enumerate(mapping.as_list(record.get("releases"))):
            inner = f"{where}.releases[{position}]"
            if isinstance(data, dict) and "ocid" not in data and "url" in data:
                page.errors[inner] = f"linked release not fetched: {mapping.show(data.get('url'))}"
                continue
            if (release := _release(data, inner, page, ocid=record.get("ocid"))) is not None:
                embedded.append(release)
        if embedded:
            found.extend(embedded)
            continue
        compiled = record.get("compiledRelease")
        if compiled is None:
            page.errors.setdefault(where, "a record without embedded releases or compiledRelease")
            continue
        inner = f"{where}.compiledRelease"
        if (release := _release(compiled, inner, page, ocid=record.get("ocid"))) is not None:
            release.whole = True
            found.append(release)
    return found


def _release(
    data: object, where: str, page: Page, *, ocid: object = None
) -> mapping.Release | None:
    if not isinstance(data, dict):
        page.errors[where] = f"a release must be an object, not {kind_of_value(data)}"
        return None
    ocid = data.get("ocid") or ocid
    if not isinstance(ocid, str) or not ocid.strip():
        page.errors[where] = "a release without an ocid"
        return None
    when = None
    if data.get("date") is not None:
        try:
            when = mapping.parse_datetime(data["date"], UTC_ZONE).astimezone(UTC)
        except ValueError as exc:
            page.errors[f"{where}.date"] = str(exc)
    ident = data.get("id")
    ident = str(ident) if isinstance(ident, str | int) and not isinstance(ident, bool) else ""
    return mapping.Release(where=where, data=data, ocid=ocid.strip(), when=when, id=ident)


def merge(state: Mapping[str, Any], release: Mapping[str, Any]) -> Json:
    """`release` applied over `state` as OCDS compiles releases: objects merge field by field,
    a null removes a field, arrays of objects with ids merge by id, other arrays replace."""
    merged = dict(state)
    for key, value in release.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        elif _identified(value) and _identified(merged.get(key)):
            merged[key] = _merge_by_id(merged[key], value)
        else:
            merged[key] = value
    return merged


def _identified(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, dict) and "id" in v for v in value)
    )


def _merge_by_id(old: list[Json], new: list[Json]) -> list[Json]:
    by_id = {str(item["id"]): item for item in old}
    for item in new:
        key = str(item["id"])
        by_id[key] = merge(by_id[key], item) if key in by_id else item
    return list(by_id.values())


def _next(package: Json, page: Page, *, rules: OcdsRules, url: str, request: Request) -> None:
    """The next page of the feed (links.next), up to rules.max_pages."""
    target = mapping.get(package, "links", "next")
    if target is None:
        return
    if not isinstance(target, str) or not target.strip():
        page.errors[NEXT] = f"expected a URL, not {kind_of_value(target)}"
        return
    number = request.context.get("page", 1)
    number = number if isinstance(number, int) and not isinstance(number, bool) else 1
    if number >= rules.max_pages:
        page.errors[NEXT] = f"not followed: max_pages ({rules.max_pages}) reached"
        return
    absolute = urljoin(url, target.strip())
    if urlsplit(absolute).scheme not in ("http", "https"):
        page.errors[NEXT] = f"not a web URL: {mapping.show(target)}"
        return
    try:
        canonical = urls.canonicalize(absolute)
    except ValueError as exc:
        page.errors[NEXT] = f"not a URL: {exc}"
        return
    if canonical == request.url:
        return
    page.requests.append(Request(canonical, context={"page": number + 1}))
