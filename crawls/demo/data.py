"""The demo board's notices, derived deterministically from a BoardConfig and an epoch.

Everything here is a pure function of (config, epoch): the notices, their listing, the extraction
rules that read them and what a correct crawl stores. crawls.demo.site renders them to pages;
no HTTP here: crawls.demo.app serves those pages.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

SEOUL = ZoneInfo("Asia/Seoul")
# The board's "today" in epoch 0; epoch n is n days later.
DAY_ZERO = date(2026, 11, 23)
NEW_PER_EPOCH = 3
MAX_EPOCH = 100
PRIVATE_PATH = "/private/notices/draft"

OK, MISSING, BROKEN, FLAKY = "ok", "missing", "broken", "flaky"
# Suffixes of duplicate listing links, in turn.
DUPLICATE_SUFFIXES = ("?utm_source=list", "#top", "?from=sitemap")

DEMO_RULES: dict[str, Any] = {
    "follow": ["nav.pagination a"],
    "items": ["table.notices td.title a"],
    "fields": {
        "title": {"css": "h1.notice-title", "type": "text", "required": True},
        "department": "dd.department",
        "reference": {"css": "dd.reference", "type": "text"},
        "views": {"css": "dd.views", "type": "int"},
        "amount": {"css": "dd.amount", "type": "decimal", "regex": r"\d[\d,]*(?:\.\d+)?"},
        "post_date": {"css": "dd.post-date", "type": "date", "formats": ["%Y.%m.%d", "%Y-%m-%d"]},
        "deadline": {"css": "dd.deadline", "type": "datetime", "formats": ["%Y-%m-%d %H:%M"]},
        "attachment": {"css": "a.attachment", "attr": "href", "type": "text"},
    },
    "timezone": "Asia/Seoul",
    "ignore_params": ["utm_source", "from"],
}


@dataclass(frozen=True)
class BoardConfig:
    listing_pages: int = 10
    per_page: int = 20
    seed: int = 1
    slow_every: int = 37
    slow_seconds: float = 0.3
    missing_every: int = 41
    broken_every: int = 53
    flaky_every: int = 29
    duplicate_every: int = 7
    crawl_delay: float | None = None
    hostile: bool = True

    def __post_init__(self) -> None:
        if self.listing_pages < 1 or self.per_page < 1:
            raise ValueError("listing_pages and per_page must be at least 1")
        everies = (self.slow_every, self.missing_every, self.broken_every, self.flaky_every)
        if min(everies) < 0 or self.slow_seconds < 0:
            raise ValueError("*_every and slow_seconds must not be negative")
        if self.duplicate_every < 0 or self.duplicate_every == 1:
            raise ValueError("duplicate_every must be 0 (none) or at least 2")

    @classmethod
    def bench(cls, detail_pages: int = 10_000) -> BoardConfig:
        """Only well-behaved pages; detail_pages is rounded up to whole listing pages of 20."""
        return cls(
            listing_pages=max(1, math.ceil(detail_pages / 20)),
            per_page=20,
            slow_every=0,
            missing_every=0,
            broken_every=0,
            flaky_every=0,
            duplicate_every=0,
            hostile=False,
        )

    @property
    def base_notices(self) -> int:
        """Notices of epoch 0: the listing slots that are not duplicate links."""
        slots = self.listing_pages * self.per_page
        return slots - (slots // self.duplicate_every if self.duplicate_every else 0)


@dataclass(frozen=True)
class Notice:
    id: int
    title: str
    department: str
    views: int
    amount: Decimal
    post_date: date
    deadline: datetime
    reference: str
    attachment: str  # absolute path of the attachment
    status: str  # OK, MISSING (404), BROKEN (always 500) or FLAKY (500 once per server)
    slow: bool
    created_epoch: int
    modified_epoch: int  # the last epoch that changed it (its creation epoch if none did)

    @property
    def path(self) -> str:
        return f"/notices/{self.id}"


@dataclass(frozen=True)
class Entry:
    """A row of the listing: a link to notice `id`, `suffix` set on duplicate links."""

    id: int
    suffix: str = ""


_REGIONS = (
    "서울특별시", "부산광역시", "인천광역시", "대구광역시", "광주광역시", "대전광역시",
    "울산광역시", "세종특별자치시", "경기도 수원시", "강원특별자치도 춘천시", "충청북도 청주시",
    "전라남도 여수시", "경상북도 포항시", "제주특별자치도",
)  # fmt: skip
_WORKS_KO = (
    "도로 보수공사", "하수관로 정비공사", "청사 냉난방설비 교체공사", "공공도서관 리모델링 공사",
    "보도블록 교체공사", "교량 내진보강공사", "CCTV 통합관제센터 유지보수 용역",
    "노후 상수관 교체공사", "체육관 LED 조명 교체", "하천 정비사업 기본설계 용역",
    "스마트 버스정류장 설치", "전산장비 구매", "어린이공원 놀이시설 개선공사",
)  # fmt: skip
_PREFIXES_KO = ("[입찰]", "[긴급]", "[재공고]", "[사전규격]", "[입찰]")
_GOODS_EN = (
    "office equipment", "network switches and routers", "LED street lighting", "CCTV cameras",
    "fire safety equipment", "electric buses", "school laptops", "medical supplies",
    "spare parts for container cranes", "cloud hosting services",
)  # fmt: skip
_WORKS_EN = (
    "road resurfacing", "sewer pipe rehabilitation", "bridge seismic retrofitting",
    "library renovation", "harbour dredging", "rooftop solar panel installation",
)  # fmt: skip
_CITIES_EN = (
    "Seoul", "Busan", "Incheon", "Daegu", "Gwangju", "Daejeon", "Ulsan", "Sejong", "Suwon", "Jeju",
)  # fmt: skip
_DEPARTMENTS = (
    "서울특별시 도시기반시설본부", "Busan Port Authority", "인천국제공항공사 시설처",
    "Korea Expressway Corporation", "조달청 시설사업국",
    "Ministry of Land, Infrastructure and Transport", "경기도교육청 재무과",
    "Daegu Metropolitan Office of Education", "한국수자원공사 물관리처",
    "Korea Rail Network Authority", "부산광역시 건설본부", "Jeju Special Self-Governing Province",
)  # fmt: skip
_ENGLISH_BUYERS = tuple(d for d in _DEPARTMENTS if d.isascii())
_REFERENCE_CODES = ("BK", "BD", "BS", "GN")


def _hash(*parts: object) -> int:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _title(rng: random.Random, year: int) -> str:
    kind = rng.randrange(9)
    if kind < 5:
        return f"{rng.choice(_PREFIXES_KO)} {year}년 {rng.choice(_REGIONS)} {rng.choice(_WORKS_KO)}"
    if kind < 7:
        return f"Tender: Supply of {rng.choice(_GOODS_EN)} for {rng.choice(_ENGLISH_BUYERS)}"
    if kind < 8:
        return f"Invitation to Bid: {rng.choice(_WORKS_EN)} in {rng.choice(_CITIES_EN)} ({year})"
    return f"RFP: Design & supervision of {rng.choice(_WORKS_EN)}, {rng.choice(_CITIES_EN)}"


def _status(config: BoardConfig, nid: int) -> str:
    for every, status in (
        (config.missing_every, MISSING),
        (config.broken_every, BROKEN),
        (config.flaky_every, FLAKY),
    ):
        if every and nid % every == 0:
            return status
    return OK


def _notice(config: BoardConfig, nid: int, created: int, post_date: date, epoch: int) -> Notice:
    rng = random.Random(f"forest-demo:{config.seed}:{nid}")  # noqa: S311 - test data
    title = _title(rng, post_date.year)
    department = rng.choice(_DEPARTMENTS)
    views = rng.randrange(5000)
    amount = rng.randrange(10_000, 5_000_000) * 1000
    deadline_day = post_date + timedelta(days=rng.randrange(7, 22))
    deadline_time = time(rng.choice((10, 14, 17, 18)), rng.choice((0, 30)))
    code = _REFERENCE_CODES[rng.randrange(len(_REFERENCE_CODES))]
    # 7_654_321 is prime to 10**8, so the eight digits differ for every id below 10**8.
    reference = f"R{post_date.year % 100:02d}{code}{nid * 7_654_321 % 10**8:08d}"
    modified = created
    for later in range(created + 1, epoch + 1):
        h = _hash(config.seed, nid, later)
        changed = False
        if h % 4 == 0:
            views += 1 + (h >> 8) % 250
            changed = True
        if (h >> 16) % 15 == 0:
            amount = amount * (101 + (h >> 24) % 20) // 100 // 1000 * 1000
            changed = True
        if (h >> 32) % 12 == 0:
            deadline_day += timedelta(days=7)
            changed = True
        if changed:
            modified = later
    return Notice(
        id=nid,
        title=title,
        department=department,
        views=views,
        amount=Decimal(amount),
        post_date=post_date,
        deadline=datetime.combine(deadline_day, deadline_time, tzinfo=SEOUL),
        reference=reference,
        attachment=f"/files/{reference}.pdf",
        status=_status(config, nid),
        slow=bool(config.slow_every and nid % config.slow_every == 0),
        created_epoch=created,
        modified_epoch=modified,
    )


def _check_epoch(epoch: int) -> None:
    if not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"epoch must be between 0 and {MAX_EPOCH}")


@lru_cache(maxsize=4)
def cached_notices(config: BoardConfig, epoch: int) -> tuple[Notice, ...]:
    _check_epoch(epoch)
    base = config.base_notices
    result: list[Notice] = []
    for created in range(epoch, 0, -1):
        first = base + NEW_PER_EPOCH * (created - 1) + 1
        day = DAY_ZERO + timedelta(days=created)
        result.extend(
            _notice(config, nid, created, day, epoch)
            for nid in range(first + NEW_PER_EPOCH - 1, first - 1, -1)
        )
    # About seven notices a day, the newest (the highest id) posted on DAY_ZERO.
    result.extend(
        _notice(config, nid, 0, DAY_ZERO - timedelta(days=(base - nid) // 7), epoch)
        for nid in range(base, 0, -1)
    )
    return tuple(result)


def notices(config: BoardConfig, epoch: int = 0) -> list[Notice]:
    """Every notice the board lists in `epoch`, newest first, the 404 and 500 ones included."""
    return list(cached_notices(config, epoch))


@lru_cache(maxsize=4)
def listing_entries(
    config: BoardConfig, epoch: int, hidden: frozenset[int] = frozenset()
) -> tuple[tuple[Entry, ...], ...]:
    every = config.duplicate_every
    listed = [n for n in cached_notices(config, epoch) if n.id not in hidden]  # hidden: taken down
    # Epoch 0 fills exactly listing_pages * per_page slots.
    slots = config.listing_pages * config.per_page + NEW_PER_EPOCH * epoch
    entries: list[Entry] = []
    for index, notice in enumerate(listed):
        entries.append(Entry(notice.id))
        last = index == len(listed) - 1
        if every and (len(entries) + 1) % every == 0 and not (last and len(entries) >= slots):
            # The next slot is a duplicate of one of the few rows just listed (never itself a
            # duplicate: the previous one is `every` slots back).
            count = (len(entries) + 1) // every
            target = entries[-1 - count % min(5, every - 1)]
            entries.append(Entry(target.id, DUPLICATE_SUFFIXES[count % len(DUPLICATE_SUFFIXES)]))
    size = config.per_page
    return tuple(tuple(entries[i : i + size]) for i in range(0, len(entries), size))


def listing(config: BoardConfig, epoch: int = 0) -> list[list[Entry]]:
    """The rows of each listing page (page 1 first), duplicate links included."""
    return [list(page) for page in listing_entries(config, epoch)]


def expected_bids(
    config: BoardConfig, *, base_url: str, epoch: int = 0
) -> dict[str, dict[str, Any]]:
    """What a correct crawl of the whole board with DEMO_RULES (obeying robots.txt) stores."""
    base_url = base_url.rstrip("/")
    return {
        f"{base_url}{n.path}": {
            "title": n.title,
            "department": n.department,
            "views": n.views,
            "amount": n.amount,
            "post_date": n.post_date,
            "deadline": n.deadline,
            "reference": n.reference,
            "extra": {"attachment": f"{base_url}{n.attachment}"},
        }
        for n in cached_notices(config, epoch)
        if n.status in (OK, FLAKY)
    }


def changed_between(
    config: BoardConfig, *, base_url: str, old_epoch: int, new_epoch: int
) -> tuple[set[str], set[str], set[str]]:
    """(new, changed, unchanged) canonical URLs of a crawl in new_epoch after one in old_epoch."""
    old = expected_bids(config, base_url=base_url, epoch=old_epoch)
    new = expected_bids(config, base_url=base_url, epoch=new_epoch)
    both = new.keys() & old.keys()
    changed = {url for url in both if new[url] != old[url]}
    return set(new.keys() - old.keys()), changed, both - changed


def epoch_time(epoch: int) -> datetime:
    """When the board entered `epoch`: the Last-Modified of what changed in it."""
    return datetime.combine(DAY_ZERO + timedelta(days=epoch), time(9), tzinfo=SEOUL)
