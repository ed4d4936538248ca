"""The demo board's pages: its notices (crawls.demo.data) rendered to bytes, keyed by path.

Pages are pure functions of (config, epoch), rendered once; crawls.demo.app serves them. What a
page is and the frame (head, header, footer) every page shares: crawls.demo.page.
"""

from __future__ import annotations

import html
from datetime import timedelta

from crawls.demo.data import (
    BROKEN,
    FLAKY,
    MISSING,
    PRIVATE_PATH,
    BoardConfig,
    Entry,
    Notice,
    cached_notices,
    epoch_time,
    listing_entries,
)
from crawls.demo.page import FOOTER, ORIGIN, Page, head_html, header_html, page_render

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
        head_html(title, canonical) + header_html(home) + '<main id="content">\n'
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
        "</p>\n" + _CONTACTS + _GUIDES + "</main>\n" + FOOTER
    )


def _message_html(title: str, text: str, home: str, heading: str = "message") -> str:
    return (
        head_html(title)
        + header_html(home)
        + f'<main id="content">\n<h1 class="{heading}">{title}</h1>\n<p>{text}</p>\n</main>\n'
        + FOOTER
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
        head_html(f"입찰공고 목록 {page}/{len(pages)}")
        + header_html(home)
        + '<main id="content">\n'
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
        + FOOTER
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
    listed = tuple(n for n in cached_notices(config, epoch) if n.id not in hidden)
    by_id = {n.id: n for n in listed}
    pages = listing_entries(config, epoch, hidden)
    now = epoch_time(epoch)
    home = _page_href(1, static=static)
    base = ORIGIN if origin is None and not static else (origin or "").rstrip("/")
    site = {
        "/robots.txt": page_render(_robots(config, base), "robots", epoch_time(0), "text/plain"),
        "/sitemap.xml": page_render(_sitemap(listed, base), "sitemap", now, "application/xml"),
        PRIVATE_PATH: page_render(
            _message_html(
                "[내부] 2027년도 예산 편성 검토안", "내부 검토용 문서입니다.", home, "notice-title"
            ),
            "private",
            epoch_time(0),
        ),
    }
    for number in range(1, len(pages) + 1):
        site[f"/notices/page/{number}"] = page_render(
            _listing_html(config, pages, by_id, number, at_notices=False, static=static),
            "listing",
            now,
        )
    if not static:
        site["/notices"] = page_render(
            _listing_html(config, pages, by_id, 1, at_notices=True, static=False), "listing", now
        )
    missing = _message_html("404 Not Found", "요청하신 공고를 찾을 수 없습니다.", home)
    broken = _message_html("500 Internal Server Error", "일시적인 오류가 발생했습니다.", home)
    attachment = page_render(PDF_BYTES, "file", epoch_time(0), "application/pdf")
    for n in listed:
        delay = config.slow_seconds if n.slow else 0.0
        modified = epoch_time(n.modified_epoch)
        if n.status == MISSING:
            site[n.path] = page_render(missing, "notice", modified, status=404, delay=delay)
        elif n.status == BROKEN:
            site[n.path] = page_render(broken, "notice", modified, status=500, delay=delay)
        else:
            flaky = n.status == FLAKY
            html_text = _detail_html(n, home)
            site[n.path] = page_render(html_text, "notice", modified, flaky=flaky, delay=delay)
        site[n.attachment] = attachment
    return site
