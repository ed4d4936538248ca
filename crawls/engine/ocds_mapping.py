"""OCDS: one compiled release mapped to a bid's fields (the mapping is in crawls.engine.ocds's
docstring); ``Release`` is one release of a package with its place and sort key. Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from crawls.engine import normalize
from crawls.engine.extract import Record
from crawls.engine.rule_checks import kind as kind_of_value

DESCRIPTION_LENGTH = 2000  # tender.description kept in extra, truncated
# Bid's column lengths: longer values are cut (the store writes them as they come).
LENGTHS = {"department": 300, "reference": 200, "procurement_method": 100}
AMOUNT_LIMIT = Decimal(10) ** 18  # Bid.amount is numeric(20, 2)

Json = dict[str, Any]  # a JSON object of the feed

UTC_ZONE = ZoneInfo("UTC")
# tender.status codes (OCDS tenderStatus) by the status Forest stores; "complete" depends on
# whether there are awards.
_STATUS = {
    "planning": "active",
    "planned": "active",
    "active": "active",
    "cancelled": "cancelled",
    "withdrawn": "cancelled",
    "unsuccessful": "closed",
}
_CANCELLATION_TAG = "tenderCancellation"
_DEAD_AWARDS = frozenset({"cancelled", "unsuccessful"})


@dataclass
class Release:
    """One release to apply: where it was in the document, its sort key."""

    where: str  # "releases[3]", "records[0].releases[1]", "records[2].compiledRelease"
    data: Json
    ocid: str
    when: datetime | None
    id: str
    whole: bool = False  # a compiled release: the whole state, not a change

    @property
    def version(self) -> str:
        """ "<UTC date>|<id>" (sorts as the dates do); "" without a date: applied first, and
        never skipped as older than the stored version."""
        if self.when is None:
            return ""
        return f"{self.when.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}|{self.id}"


_MISSING = object()


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def get(data: object, *path: str) -> object:
    """The value at `path` (None for absent or null)."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def record(ocid: str, release: Release, state: Json, *, timezone: ZoneInfo, url: str) -> Record:
    """The bid fields of `state` (the compiled state after `release`); only those it holds."""
    fields: dict[str, object] = {}
    errors: dict[str, str] = {}
    tender: Json = state["tender"] if isinstance(state.get("tender"), dict) else {}
    tender_id = get(tender, "id")
    if _is_text(tender_id):
        fields["reference"] = str(tender_id).strip()
    elif tender or release.whole:
        fields["reference"] = ocid
    # else (a planning, award or contract release without a tender): the stored reference
    # stays, rather than the ocid overwriting a tender.id an earlier page gave.
    if (title := get(tender, "title")) is not None:
        fields["title"] = _text(title, "title", errors)
    if (department := _department(state)) is not None:
        fields["department"] = department
    value = get(tender, "value")
    if (amount := get(value, "amount")) is not None:
        fields["amount"] = _amount(amount, errors)
    if (currency := get(value, "currency")) is not None:
        code = normalize.currency_code(currency)
        if code is None:
            errors["currency"] = f"tender.value.currency {show(currency)} is not an ISO 4217 code"
        fields["currency"] = code
    if (published := get(tender, "datePublished")) is not None:
        fields["post_date"] = _when(published, "post_date", timezone, errors, day=True)
    if (end := get(tender, "tenderPeriod", "endDate")) is not None:
        fields["deadline"] = _when(end, "deadline", timezone, errors, day=False)
    status = _status(state, errors)
    if status is not _MISSING:
        fields["status"] = status
    if (method := get(tender, "procurementMethod")) is not None:
        fields["procurement_method"] = _text(method, "procurement_method", errors)
    items = get(tender, "items")
    if isinstance(items, list):
        found: list[object] = []
        for item in items:
            if isinstance(item, dict):
                found.append(item.get("classification"))
                extra = item.get("additionalClassifications")
                found.extend(extra if isinstance(extra, list) else [])
        fields["classifications"] = normalize.classification_codes([c for c in found if c])
    for name, length in LENGTHS.items():
        if isinstance(text := fields.get(name), str):
            fields[name] = text[:length]
    fields.update(_extra(ocid, release, state, tender))
    return Record(
        key=ocid,
        fields=fields,
        errors=errors,
        url=_notice_url(tender, url),
        version=release.version,
        partial=not release.whole,
    )


def _extra(ocid: str, release: Release, state: Json, tender: Json) -> dict[str, object]:
    """What else a bid manager reads off a notice, kept in the bid's extra."""
    extra: dict[str, object] = {"ocid": ocid}
    if release.id:
        extra["release_id"] = release.id
    if release.when is not None:
        extra["release_date"] = release.when.isoformat()
    tag = state.get("tag")
    if isinstance(tag, list):
        extra["tag"] = [str(t) for t in tag if _is_text(t)]
    for key, name in (
        ("description", "description"),
        ("mainProcurementCategory", "main_procurement_category"),
        ("procurementMethodDetails", "procurement_method_details"),
        ("awardCriteria", "award_criteria"),
    ):
        value = tender.get(key)
        if isinstance(value, str) and value.strip():
            extra[name] = value.strip()[:DESCRIPTION_LENGTH]
    for path, name in (
        (("tenderPeriod", "startDate"), "tender_start"),
        (("enquiryPeriod", "endDate"), "enquiry_deadline"),
    ):
        if _is_text(value := get(tender, *path)):
            extra[name] = str(value)
    awards = [a for a in as_list(state.get("awards")) if isinstance(a, dict)]
    suppliers = [
        s["name"]
        for award in awards
        if award.get("status") not in _DEAD_AWARDS
        for s in as_list(award.get("suppliers"))
        if isinstance(s, dict) and _is_text(s.get("name"))
    ]
    if suppliers:
        extra["suppliers"] = list(dict.fromkeys(suppliers))
    return extra


def _department(state: Json) -> str | None:
    """The buyer's name, else the procuring entity's (by name, else by id among the parties),
    else the name of a party with the role buyer, else procuringEntity."""
    parties = [p for p in as_list(state.get("parties")) if isinstance(p, dict)]
    for reference in (state.get("buyer"), get(state, "tender", "procuringEntity")):
        if not isinstance(reference, dict):
            continue
        if _is_text(reference.get("name")):
            return str(reference["name"]).strip()
        ident = reference.get("id")
        for party in parties:
            if ident is not None and party.get("id") == ident and _is_text(party.get("name")):
                return str(party["name"]).strip()
    for role in ("buyer", "procuringEntity"):
        for party in parties:
            roles = party.get("roles")
            if isinstance(roles, list) and role in roles and _is_text(party.get("name")):
                return str(party["name"]).strip()
    return None


def _status(state: Json, errors: dict[str, str]) -> object:
    """The stored status of the state; _MISSING when it says none."""
    tag = state.get("tag")
    if isinstance(tag, list) and _CANCELLATION_TAG in tag:
        return "cancelled"
    code = get(state, "tender", "status")
    if code is None:
        return _MISSING
    if code == "complete":
        awards = [a for a in as_list(state.get("awards")) if isinstance(a, dict)]
        live = [a for a in awards if a.get("status") not in _DEAD_AWARDS]
        return "awarded" if live else "closed"
    if isinstance(code, str) and code in _STATUS:
        return _STATUS[code]
    errors["status"] = f"tender.status {show(code)} is not an OCDS tender status"
    return None


def _text(value: object, name: str, errors: dict[str, str]) -> str | None:
    if _is_text(value):
        return " ".join(str(value).split())
    errors[name] = f"expected text, not {kind_of_value(value)}"
    return None


def _is_text(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip() != ""


def _amount(value: object, errors: dict[str, str]) -> Decimal | None:
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        number = Decimal(value.replace(",", "").strip()) if isinstance(value, str) else value
        if not isinstance(number, Decimal | int):
            raise InvalidOperation
        number = Decimal(number)
        if not number.is_finite():
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        errors["amount"] = f"tender.value.amount {show(value)} is not a number"
        return None
    if abs(number) >= AMOUNT_LIMIT:
        errors["amount"] = f"tender.value.amount {number} is too large"
        return None
    return number


def _when(
    value: object, name: str, tz: ZoneInfo, errors: dict[str, str], *, day: bool
) -> date | datetime | None:
    try:
        moment = parse_datetime(value, tz)
    except ValueError as exc:
        errors[name] = str(exc)
        return None
    return moment.astimezone(tz).date() if day else moment


def parse_datetime(value: object, tz: ZoneInfo) -> datetime:
    """An aware datetime from an ISO 8601 date or date-time (naive ones in `tz`)."""
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 date, not {kind_of_value(value)}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"cannot read {show(value)} as an ISO 8601 date") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz)


def _notice_url(tender: Json, url: str) -> str:
    """The tender notice's web page (tender.documents of type tenderNotice), if any."""
    for document in as_list(get(tender, "documents")):
        if isinstance(document, dict) and document.get("documentType") == "tenderNotice":
            link = document.get("url")
            if isinstance(link, str) and link.strip():
                absolute = urljoin(url, link.strip())
                if urlsplit(absolute).scheme in ("http", "https"):
                    return absolute
    return ""


def show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
