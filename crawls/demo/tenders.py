"""The demo board's notices as tenders: what its API, XML service, OCDS feed and eGov board show.

A tender is one of the board's notices (crawls.demo.data) whose detail page answers (a 404 or
always-500 notice is withdrawn), with its history across epochs: the epochs that changed its
amount or deadline (an amendment) and, for about one notice in CANCEL_ONE_IN per epoch, the epoch
that cancelled it. Everything is a pure function of (BoardConfig, epoch), like data.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Any

from crawls.demo import data
from crawls.demo.data import SEOUL, BoardConfig, Notice

CURRENCY = "KRW"
OCID_PREFIX = "ocds-demo01-"
# Each epoch after its creation cancels a tender with odds of one in CANCEL_ONE_IN.
CANCEL_ONE_IN = 16
ACTIVE, CANCELLED = "active", "cancelled"
TENDER, AMENDMENT, CANCELLATION, UPDATE = (
    "tender",
    "tenderAmendment",
    "tenderCancellation",
    "tenderUpdate",
)
# CPV codes (scheme "CPV") the tenders are classified under, in turn.
CPV_CODES = (
    ("45233140", "Roadworks"),
    ("45232400", "Sewer construction work"),
    ("45454000", "Restructuring work"),
    ("32323500", "Video-surveillance system"),
    ("30213100", "Portable computers"),
    ("31527200", "Exterior lighting"),
    ("71320000", "Engineering design services"),
    ("72415000", "Web hosting services"),
)


@dataclass(frozen=True)
class Version:
    """One published state of a tender (an OCDS release)."""

    epoch: int
    date: datetime
    tag: str  # TENDER, AMENDMENT, CANCELLATION or UPDATE (a change after the cancellation)
    amount: Decimal
    deadline: datetime
    cancelled: bool


@dataclass(frozen=True)
class Tender:
    notice: Notice  # as of the epoch asked for
    versions: tuple[Version, ...]  # oldest first; the last one is the notice's current state

    @property
    def status(self) -> str:
        return CANCELLED if self.versions[-1].cancelled else ACTIVE

    @property
    def amended(self) -> bool:
        return any(v.tag in (AMENDMENT, UPDATE) for v in self.versions)

    @property
    def ocid(self) -> str:
        return f"{OCID_PREFIX}{self.notice.id}"

    @property
    def published(self) -> datetime:
        """When the notice was posted (09:00 in Seoul on its post date)."""
        return datetime.combine(self.notice.post_date, time(9), tzinfo=SEOUL)

    @property
    def procurement_method(self) -> str:
        return "selective" if self.notice.id % 5 == 0 else "open"

    @property
    def cpv(self) -> tuple[str, str]:
        return CPV_CODES[self.notice.id % len(CPV_CODES)]


def _cancelled_in(config: BoardConfig, nid: int, epoch: int) -> bool:
    return data._hash(config.seed, nid, "cancel", epoch) % CANCEL_ONE_IN == 0


def _history(config: BoardConfig, notice: Notice, epoch: int) -> tuple[Version, ...]:
    created = notice.created_epoch
    first = data._notice(config, notice.id, created, notice.post_date, created)
    published = datetime.combine(notice.post_date, time(9), tzinfo=SEOUL)
    versions = [Version(created, published, TENDER, first.amount, first.deadline, False)]
    cancelled = False
    for later in range(created + 1, epoch + 1):
        state = (
            notice
            if later == epoch
            else data._notice(config, notice.id, created, notice.post_date, later)
        )
        last = versions[-1]
        changed = (state.amount, state.deadline) != (last.amount, last.deadline)
        if not cancelled and _cancelled_in(config, notice.id, later):
            cancelled, tag = True, CANCELLATION
        elif changed:
            tag = UPDATE if cancelled else AMENDMENT
        else:
            continue
        date = data.epoch_time(later)
        versions.append(Version(later, date, tag, state.amount, state.deadline, cancelled))
    return tuple(versions)


@lru_cache(maxsize=4)
def _tenders(config: BoardConfig, epoch: int) -> tuple[Tender, ...]:
    return tuple(
        Tender(n, _history(config, n, epoch))
        for n in data.cached_notices(config, epoch)
        if n.status in (data.OK, data.FLAKY)
    )


def tenders(config: BoardConfig, epoch: int = 0) -> tuple[Tender, ...]:
    """The tenders the feeds publish in `epoch`, newest first (the board's order)."""
    return _tenders(config, epoch)


def tender_by_id(config: BoardConfig, epoch: int, nid: int) -> Tender | None:
    return _by_id(config, epoch).get(nid)


@lru_cache(maxsize=4)
def _by_id(config: BoardConfig, epoch: int) -> dict[int, Tender]:
    return {t.notice.id: t for t in _tenders(config, epoch)}


def _fields(tender: Tender) -> dict[str, Any]:
    n = tender.notice
    return {
        "title": n.title,
        "department": n.department,
        "reference": n.reference,
        "views": n.views,
        "amount": n.amount,
        "post_date": n.post_date,
        "deadline": n.deadline,
        "currency": CURRENCY,
        "status": tender.status,
    }


def expected_feed_bids(config: BoardConfig, *, epoch: int = 0) -> dict[str, dict[str, Any]]:
    """What a correct crawl of the JSON API, the XML service or the eGov board with its demo
    rules stores in `epoch`: the notice's reference (the item's key) → bid fields."""
    return {t.notice.reference: _fields(t) for t in _tenders(config, epoch)}


def expected_ocds_bids(config: BoardConfig, *, epoch: int = 0) -> dict[str, dict[str, Any]]:
    """What a correct crawl of the OCDS feed stores in `epoch`: ocid → bid fields (no views:
    OCDS has none; procurement method and CPV classification besides)."""
    result = {}
    for t in _tenders(config, epoch):
        fields = _fields(t)
        del fields["views"]
        fields["procurement_method"] = t.procurement_method
        fields["classifications"] = [f"CPV:{t.cpv[0]}"]
        result[t.ocid] = fields
    return result
