"""The demo board's notices and pages, derived deterministically from a BoardConfig and an epoch.

Everything here is a pure function of (config, epoch): the notices, the pages that show them
(pre-rendered to bytes), the extraction rules that read them and what a correct crawl stores.
No HTTP here: crawls.demo.app serves these pages.
"""

from __future__ import annotations

import hashlib
import html
import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from email.utils import format_datetime
from functools import lru_cache
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

DEMO_RULES: dict = {
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
def _notices(config: BoardConfig, epoch: int) -> tuple[Notice, ...]:
    _check_epoch(epoch)
    base = config.base_notices
    result = []
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
    return list(_notices(config, epoch))


@lru_cache(maxsize=4)
def _listing(
    config: BoardConfig, epoch: int, hidden: frozenset[int] = frozenset()
) -> tuple[tuple[Entry, ...], ...]:
    every = config.duplicate_every
    listed = [n for n in _notices(config, epoch) if n.id not in hidden]  # hidden: taken down
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
    return [list(page) for page in _listing(config, epoch)]


def expected_bids(config: BoardConfig, *, base_url: str, epoch: int = 0) -> dict[str, dict]:
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
        for n in _notices(config, epoch)
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


# --- Pages ----------------------------------------------------------------------------------------

# Stands where a page needs the request's origin (scheme://host): absolute links, robots.txt, the
# sitemap. Pages are rendered once; the server joins their parts with the origin per request.
ORIGIN = "\ue000"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Page:
    parts: tuple[bytes, ...]  # the body, split where the origin goes
    content_type: str
    etag: str
    modified: datetime
    last_modified: str  # `modified` as an HTTP date
    kind: str  # "listing", "notice", "private", "robots", "sitemap" or "file"
    status: int = 200
    flaky: bool = False  # answers 500 to the first request a server gets
    delay: float = 0.0

    def body(self, origin: str = "") -> bytes:
        if len(self.parts) == 1:
            return self.parts[0]
        return origin.encode().join(self.parts)


def epoch_time(epoch: int) -> datetime:
    """When the board entered `epoch`: the Last-Modified of what changed in it."""
    return datetime.combine(DAY_ZERO + timedelta(days=epoch), time(9), tzinfo=SEOUL)


def _page(
    content: str | bytes, kind: str, modified: datetime, content_type: str = HTML, **kw
) -> Page:
    data = content.encode() if isinstance(content, str) else content
    etag = '"' + hashlib.blake2b(data, digest_size=10).hexdigest() + '"'
    http_date = format_datetime(modified.astimezone(UTC), usegmt=True)
    parts = tuple(data.split(ORIGIN.encode()))
    return Page(parts, content_type, etag, modified, http_date, kind, **kw)


_CSS = """
:root{--ink:#1f2a37;--muted:#6b7280;--line:#d9dee5;--brand:#0b5394;--bg:#f6f8fa}
*{box-sizing:border-box}body{margin:0;font:15px/1.6 "Noto Sans KR","Apple SD Gothic Neo",
"Malgun Gothic",Arial,sans-serif;color:var(--ink);background:var(--bg)}a{color:var(--brand);
text-decoration:none}a:hover{text-decoration:underline}.skip{position:absolute;left:-999px}
.site-header{background:#fff;border-bottom:3px solid var(--brand)}.site-header .inner,
main,.site-footer .inner{max-width:1080px;margin:0 auto;padding:0 20px}.brand{display:flex;
align-items:center;gap:12px;padding:14px 0;font-size:20px;font-weight:700}.brand small{
font-weight:400;color:var(--muted);font-size:13px}.gnb ul{display:flex;gap:24px;margin:0;
padding:0 0 10px;list-style:none}.gnb a{color:var(--ink);font-weight:500}main{padding:24px 20px
48px;background:#fff;min-height:60vh}.breadcrumb{color:var(--muted);font-size:13px;margin-bottom
:12px}table.notices{width:100%;border-collapse:collapse;border-top:2px solid var(--ink)}
table.notices th,table.notices td{padding:9px 8px;border-bottom:1px solid var(--line);
text-align:center}table.notices td.title{text-align:left}table.notices tr.internal{opacity:.6}
.pagination{display:flex;justify-content:center;gap:6px;margin:24px 0}.pagination a,
.pagination strong{min-width:32px;padding:4px 8px;border:1px solid var(--line);text-align:
center}.pagination strong{background:var(--brand);color:#fff}.notice-title{font-size:24px;
margin:8px 0 16px}dl.notice-meta{display:grid;grid-template-columns:160px 1fr;border-top:2px
solid var(--ink);margin:0 0 24px}dl.notice-meta dt,dl.notice-meta dd{margin:0;padding:8px 12px;
border-bottom:1px solid var(--line)}dl.notice-meta dt{background:var(--bg);font-weight:500}
.notice-body p{margin:0 0 12px}.notice-files ul{padding-left:18px}.site-footer{background:
#2b3440;color:#c9d1db;font-size:13px;padding:24px 0}.site-footer a{color:#fff}
.site-footer address{font-style:normal}@media (max-width:720px){dl.notice-meta{
grid-template-columns:1fr}.gnb ul{flex-wrap:wrap;gap:12px}}
"""


def _head(title: str, extra: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="ko">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title} | 공공입찰 알림판 · Forest demo board</title>\n{extra}"
        f"<style>{_CSS}</style>\n</head>\n"
    )


def _header(home: str) -> str:
    menu = (
        (home, "입찰공고 Notices"),
        ("#results", "개찰결과 Results"),
        ("#contracts", "계약현황 Contracts"),
        ("#guide", "입찰안내 Guide"),
        ("#faq", "자주 묻는 질문 FAQ"),
        ("#contact", "문의 Contact"),
    )
    items = "".join(f'<li><a href="{href}">{label}</a></li>' for href, label in menu)
    return (
        '<body>\n<a class="skip" href="#content">본문 바로가기</a>\n'
        '<header class="site-header"><div class="inner">\n'
        f'<div class="brand"><a href="{home}">공공입찰 알림판</a>'
        "<small>Public procurement notice board (demo)</small></div>\n"
        f'<nav class="gnb" aria-label="주메뉴"><ul>{items}</ul></nav>\n</div></header>\n'
    )


_FOOTER = """<footer class="site-footer"><div class="inner">
<p><a href="#privacy">개인정보처리방침 Privacy policy</a> ·
<a href="#terms">이용약관 Terms of use</a> · <a href="#accessibility">웹 접근성 Accessibility</a> ·
<a href="#email">이메일무단수집거부</a></p>
<address>(04524) 서울특별시 중구 세종대로 110 공공입찰 알림판 운영센터 · 대표전화 1588-0000 ·
Operations centre, 110 Sejong-daero, Jung-gu, Seoul 04524, Republic of Korea</address>
<p>본 사이트의 공고는 시험용으로 생성된 가상의 자료입니다. The notices on this site are synthetic
data generated for testing web crawlers; no tender, amount or organisation here is real.</p>
<p>© 2026 Forest demo board. 평일 09:00&ndash;18:00 (점심시간 12:00&ndash;13:00 제외) 상담 가능.</p>
</div></footer>
</body>
</html>
"""

_PARAGRAPHS = (
    "1. 입찰에 부치는 사항: 본 공고는 「국가를 당사자로 하는 계약에 관한 법률」 및 같은 법 "
    "시행령에 따라 일반경쟁입찰에 부치는 사항을 안내합니다. 입찰참가자는 공고문과 첨부된 "
    "과업내용서, 입찰유의서 및 계약일반조건을 충분히 숙지한 후 입찰에 참가하여야 하며, 이를 "
    "숙지하지 못한 책임은 입찰참가자에게 있습니다.",
    "2. Eligibility: bidders must be registered in the national e-procurement system before the "
    "bid submission deadline and hold the licences required by the applicable laws for the works "
    "or supplies described in this notice. Joint ventures are accepted where the lead member "
    "holds at least 51 percent of the contract share.",
    "3. 입찰참가자격: 공고일 전일부터 입찰일까지 해당 업종을 등록한 업체로서 「중소기업제품 "
    "구매촉진 및 판로지원에 관한 법률」에 따른 직접생산확인증명서를 소지한 자에 한하며, "
    "입찰참가자격 등록은 입찰서 제출 마감일 전일까지 완료하여야 합니다.",
    "4. Submission: bids are submitted electronically only. Paper or e-mail submissions will not "
    "be opened. Bid security of five percent of the bid amount must be posted through the "
    "electronic guarantee service before the deadline stated above.",
    "5. 낙찰자 결정방법: 예정가격 이하로서 낙찰하한율 이상 최저가격으로 입찰한 자 순으로 "
    "적격심사를 실시하여 종합평점이 95점 이상인 자를 낙찰자로 결정합니다. 동일가격 입찰자가 "
    "2인 이상인 경우에는 전자입찰시스템의 추첨에 의하여 낙찰자를 결정합니다.",
    "6. Evaluation: the contract is awarded to the lowest evaluated responsive bid. The "
    "contracting authority may request clarifications of any bid; no change in the price or "
    "substance of a bid will be sought, offered or permitted after the opening.",
    "7. 기타사항: 입찰 관련 문의는 공고기관 계약담당자에게 하시기 바라며, 과업 관련 기술적 "
    "문의는 사업부서로 하시기 바랍니다. 본 공고에 명시되지 아니한 사항은 관계 법령 및 "
    "입찰유의서에 따르며, 공고 내용이 정정될 경우 정정공고를 통하여 안내합니다.",
    "8. Clarifications: questions about this notice may be sent through the board's enquiry "
    "form up to five days before the deadline. Answers are published as addenda and form part "
    "of the tender documents; bidders are responsible for checking them before submitting.",
    "9. 청렴계약 이행: 입찰참가자는 청렴계약 이행 서약서를 제출하여야 하며, 입찰 및 계약 "
    "과정에서 금품·향응 제공 등 부정행위가 적발될 경우 입찰참가자격 제한 및 계약 해지 등의 "
    "불이익을 받게 됩니다. 하도급 계약을 체결하는 경우에도 관계 법령이 정하는 바에 따라 "
    "하도급 관리계획을 제출하고 발주기관의 승인을 받아야 합니다.",
    "10. 대가의 지급: 계약상대자는 기성 또는 준공 검사에 합격한 후 대가 지급을 청구할 수 "
    "있으며, 발주기관은 청구를 받은 날부터 5일 이내에 대가를 지급합니다. 선금은 계약금액의 "
    "100분의 70 범위에서 지급할 수 있으며, 선금 사용계획서와 보증서를 제출하여야 합니다.",
    "11. Data protection: personal data submitted with a bid is processed only for evaluating "
    "the bid and managing the resulting contract, and is kept for the period required by the "
    "public records act. Bidders may ask to see or correct their data at any time.",
)

_PARAGRAPHS_HTML = tuple(f"<p>{html.escape(p)}</p>" for p in _PARAGRAPHS)
_CONTACTS = (
    '<section class="contacts">\n<h2>문의처 Contacts</h2>\n<table class="contacts">\n'
    "<tr><th>구분 Topic</th><th>담당 Desk</th><th>전화 Phone</th><th>전자우편 E-mail</th></tr>\n"
    "<tr><td>입찰 절차 Bidding</td><td>계약팀 Contracts desk</td><td>02-0000-1234</td>"
    "<td>contracts@example.invalid</td></tr>\n"
    "<tr><td>과업 내용 Scope</td><td>사업부서 Project office</td><td>02-0000-5678</td>"
    "<td>projects@example.invalid</td></tr>\n"
    "<tr><td>전자입찰 시스템 E-bidding system</td><td>고객지원센터 Help desk</td>"
    "<td>1588-0000</td><td>help@example.invalid</td></tr>\n</table>\n</section>\n"
)
_GUIDES = (
    '<aside class="guides">\n<h2>입찰 안내 Guides for bidders</h2>\n<ul>\n'
    + "".join(
        f'<li><a href="#guide-{i}">{label}</a></li>\n'
        for i, label in enumerate(
            (
                "전자입찰 참가 절차 안내 (How to take part in e-bidding)",
                "입찰보증금 납부 방법 (Posting bid security)",
                "적격심사 기준 및 배점표 (Qualification review criteria)",
                "공동수급 협정서 작성 요령 (Joint venture agreements)",
                "청렴계약 이행 서약서 (Integrity pact)",
                "하도급 관리계획 제출 안내 (Subcontracting plans)",
                "전자계약 체결 절차 (Signing contracts electronically)",
                "대가 지급 및 선금 신청 (Payments and advances)",
                "입찰 관련 자주 묻는 질문 (Frequently asked questions)",
                "부정당업자 제재 기준 (Debarment rules)",
            ),
            start=1,
        )
    )
    + "</ul>\n</aside>\n"
)


def _amount(notice: Notice) -> str:
    value = f"{int(notice.amount):,}"
    return (f"₩{value}", f"KRW {value}", f"{value}원")[notice.id % 3]


def _post_date(notice: Notice) -> str:
    return notice.post_date.strftime("%Y.%m.%d" if notice.id % 2 else "%Y-%m-%d")


def _detail_html(notice: Notice, home: str) -> str:
    e = html.escape
    title = e(notice.title)
    start = notice.id % len(_PARAGRAPHS_HTML)
    paragraphs = "\n".join(_PARAGRAPHS_HTML[start:] + _PARAGRAPHS_HTML[:start])
    deadline = notice.deadline.strftime("%Y-%m-%d %H:%M")
    opening = (notice.deadline + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    # Every other notice links its attachment relatively, to exercise URL resolution.
    href = notice.attachment if notice.id % 2 == 0 else f"..{notice.attachment}"
    canonical = f'<link rel="canonical" href="{notice.path}">\n'
    return (
        _head(title, canonical) + _header(home) + '<main id="content">\n'
        f'<nav class="breadcrumb"><a href="{home}">입찰공고</a> &rsaquo; 공고 상세</nav>\n'
        f'<article class="notice" id="top">\n<h1 class="notice-title">{title}</h1>\n'
        '<dl class="notice-meta">\n'
        f'<dt>공고번호 Reference</dt><dd class="reference">{notice.reference}</dd>\n'
        f'<dt>수요기관 Department</dt><dd class="department">{e(notice.department)}</dd>\n'
        f'<dt>게시일 Posted</dt><dd class="post-date">{_post_date(notice)}</dd>\n'
        f'<dt>입찰마감 Deadline</dt><dd class="deadline">{deadline}</dd>\n'
        f'<dt>추정가격 Amount</dt><dd class="amount">{_amount(notice)}</dd>\n'
        f'<dt>조회수 Views</dt><dd class="views">{notice.views:,}</dd>\n</dl>\n'
        f'<section class="notice-body">\n<h2>공고 내용 Details</h2>\n{paragraphs}\n</section>\n'
        '<section class="notice-schedule">\n<h2>입찰 일정 Schedule</h2>\n<table class="schedule">'
        "<tr><th>구분 Step</th><th>일시 Date</th></tr>\n"
        f"<tr><td>공고게시 Published</td><td>{_post_date(notice)}</td></tr>\n"
        f"<tr><td>입찰서 제출마감 Submission deadline</td><td>{deadline}</td></tr>\n"
        f"<tr><td>개찰 Bid opening</td><td>{opening}</td></tr>\n</table>\n</section>\n"
        '<section class="notice-files">\n<h2>첨부파일 Attachments</h2>\n<ul><li>'
        f'<a class="attachment" href="{href}">공고문_{notice.reference}.pdf</a> (PDF, 184 KB)'
        f'</li></ul>\n</section>\n</article>\n<p><a href="{home}">목록으로 Back to the list</a>'
        "</p>\n" + _CONTACTS + _GUIDES + "</main>\n" + _FOOTER
    )


def _message_html(title: str, text: str, home: str, heading: str = "message") -> str:
    return (
        _head(title)
        + _header(home)
        + f'<main id="content">\n<h1 class="{heading}">{title}</h1>\n<p>{text}</p>\n</main>\n'
        + _FOOTER
    )


def _page_href(page: int, *, static: bool) -> str:
    return "/notices" if page == 1 and not static else f"/notices/page/{page}"


def _pagination(page: int, pages: int, *, static: bool) -> str:
    def link(target: int, label: str, attrs: str = "") -> str:
        return f'<a{attrs} href="{_page_href(target, static=static)}">{label}</a>'

    parts = []
    if page > 1:
        parts += [
            link(1, "&laquo; 처음", ' class="first"'),
            link(page - 1, "&lsaquo; 이전", ' rel="prev"'),
        ]
    for number in range(max(1, page - 5), min(pages, page + 5) + 1):
        parts.append(
            f'<strong aria-current="page">{number}</strong>'
            if number == page
            else link(number, str(number))
        )
    if page < pages:
        parts += [
            link(page + 1, "다음 &rsaquo;", ' rel="next"'),
            link(pages, "끝 &raquo;", ' class="last"'),
        ]
    return '<nav class="pagination" aria-label="페이지 Pages">\n' + "\n".join(parts) + "\n</nav>\n"


def _entry_href(entry: Entry, slot: int, *, at_notices: bool, static: bool) -> str:
    # Most links are absolute paths; some relative, some absolute URLs, to exercise resolution.
    if slot % 10 == 4 or (slot % 10 == 8 and static):
        href = f"notices/{entry.id}" if at_notices else f"../{entry.id}"
    elif slot % 10 == 8:
        href = f"{ORIGIN}/notices/{entry.id}"
    else:
        href = f"/notices/{entry.id}"
    return href + entry.suffix


def _listing_html(
    config: BoardConfig,
    pages: tuple[tuple[Entry, ...], ...],
    by_id: dict[int, Notice],
    page: int,
    *,
    at_notices: bool,
    static: bool,
) -> str:
    e = html.escape
    home = _page_href(1, static=static)
    first_slot = (page - 1) * config.per_page + 1
    rows = []
    for slot, entry in enumerate(pages[page - 1], start=first_slot):
        n = by_id[entry.id]
        href = _entry_href(entry, slot, at_notices=at_notices, static=static)
        rows.append(
            f'<tr><td class="num">{n.id}</td><td class="title"><a href="{href}">{e(n.title)}</a>'
            f'</td><td class="dept">{e(n.department)}</td><td class="date">{_post_date(n)}</td>'
            f'<td class="hits">{n.views:,}</td></tr>'
        )
    if page == 1:
        # Disallowed by robots.txt: a crawler that obeys it never fetches this link.
        rows.append(
            '<tr class="internal"><td class="num">-</td><td class="title">'
            f'<a href="{PRIVATE_PATH}">[내부] 2027년도 예산 편성 검토안 (internal draft)</a></td>'
            '<td class="dept">기획조정실</td><td class="date">-</td><td class="hits">-</td></tr>'
        )
    total = sum(len(p) for p in pages)
    return (
        _head(f"입찰공고 목록 {page}/{len(pages)}") + _header(home) + '<main id="content">\n'
        '<nav class="breadcrumb"><a href="#home">홈</a> &rsaquo; 입찰공고</nav>\n'
        "<h1>입찰공고 목록 <small>Bid notices</small></h1>\n"
        f'<form class="search" action="{home}" method="get"><label>검색어 '
        '<input type="search" name="q"></label> <button type="submit">검색</button></form>\n'
        f'<p class="summary">전체 {total:,}건 · {page}/{len(pages)} 페이지</p>\n'
        '<table class="notices">\n<thead><tr><th>번호</th><th>제목 Title</th>'
        "<th>수요기관 Department</th><th>게시일 Posted</th><th>조회 Views</th></tr></thead>\n"
        "<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>\n"
        + _pagination(page, len(pages), static=static)
        + "</main>\n"
        + _FOOTER
    )


def _robots(config: BoardConfig, origin: str) -> str:
    lines = ["User-agent: *", "Disallow: /private/"]
    if config.crawl_delay is not None:
        lines.append(f"Crawl-delay: {config.crawl_delay:g}")
    lines.append(f"Sitemap: {origin}/sitemap.xml")
    return "\n".join(lines) + "\n"


def _sitemap(listed: tuple[Notice, ...], origin: str) -> str:
    urls = "".join(
        f"<url><loc>{origin}{n.path}</loc>"
        f"<lastmod>{epoch_time(n.modified_epoch).date().isoformat()}</lastmod></url>\n"
        for n in listed
        if n.status != MISSING
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{urls}</urlset>\n'
    )


# The smallest well-formed one-page PDF, served for every attachment.
PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def render_site(
    config: BoardConfig,
    epoch: int = 0,
    *,
    static: bool = False,
    origin: str | None = None,
    hidden: frozenset[int] = frozenset(),
) -> dict[str, Page]:
    """Every page of the board in `epoch`, keyed by path.

    static: for files served as they are (no request to take a host from): no absolute-URL
    links, page 1 only at /notices/page/1, and robots.txt and the sitemap built on `origin`
    (absolute paths when it is None). hidden: ids of notices taken down (crawls.demo.takedown):
    not listed, their pages not found.
    """
    listed = tuple(n for n in _notices(config, epoch) if n.id not in hidden)
    by_id = {n.id: n for n in listed}
    pages = _listing(config, epoch, hidden)
    now = epoch_time(epoch)
    home = _page_href(1, static=static)
    base = ORIGIN if origin is None and not static else (origin or "").rstrip("/")
    site = {
        "/robots.txt": _page(_robots(config, base), "robots", epoch_time(0), "text/plain"),
        "/sitemap.xml": _page(_sitemap(listed, base), "sitemap", now, "application/xml"),
        PRIVATE_PATH: _page(
            _message_html(
                "[내부] 2027년도 예산 편성 검토안", "내부 검토용 문서입니다.", home, "notice-title"
            ),
            "private",
            epoch_time(0),
        ),
    }
    for number in range(1, len(pages) + 1):
        site[f"/notices/page/{number}"] = _page(
            _listing_html(config, pages, by_id, number, at_notices=False, static=static),
            "listing",
            now,
        )
    if not static:
        site["/notices"] = _page(
            _listing_html(config, pages, by_id, 1, at_notices=True, static=False), "listing", now
        )
    missing = _message_html("404 Not Found", "요청하신 공고를 찾을 수 없습니다.", home)
    broken = _message_html("500 Internal Server Error", "일시적인 오류가 발생했습니다.", home)
    attachment = _page(PDF_BYTES, "file", epoch_time(0), "application/pdf")
    for n in listed:
        delay = config.slow_seconds if n.slow else 0.0
        modified = epoch_time(n.modified_epoch)
        if n.status == MISSING:
            site[n.path] = _page(missing, "notice", modified, status=404, delay=delay)
        elif n.status == BROKEN:
            site[n.path] = _page(broken, "notice", modified, status=500, delay=delay)
        else:
            flaky = n.status == FLAKY
            html_text = _detail_html(n, home)
            site[n.path] = _page(html_text, "notice", modified, flaky=flaky, delay=delay)
        site[n.attachment] = attachment
    return site
