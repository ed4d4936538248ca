"""The demo board's POST-form board, in the style of the Korean eGovFrame (전자정부 표준프레임워크).

Titles and page numbers are links to "#" whose onclick calls a script that fills a hidden form
and POSTs it: list pages other than the first are reached only by POST pageIndex=N to list.do,
and a notice only by POST nttId (+ bbsId) to view.do. Pure functions of (BoardConfig, epoch),
like data.py; crawls.demo.routes serves them.
"""

from __future__ import annotations

import html
from typing import Any

from crawls.demo.data import BoardConfig
from crawls.demo.page import FOOTER, head_html, header_html
from crawls.demo.tenders import CURRENCY, Tender, tenders

LIST_PATH = "/egov/notice/list.do"
VIEW_PATH = "/egov/notice/view.do"
BBS_ID = "BBSMSTR_000000000001"
_STATUS_WORDS = {"active": "공고중", "cancelled": "취소"}

DEMO_EGOV_RULES: dict[str, Any] = {
    "follow": [
        {
            "css": "div.pagination a[onclick*=fn_egov_select_noticeList]",
            "attr": "onclick",
            "regex": r"fn_egov_select_noticeList\((\d+)\)",
            "request": {
                "method": "POST",
                "from_form": "form#listForm",
                "form": {"pageIndex": "{1}"},
            },
        }
    ],
    "items": [
        {
            "css": "td.subject a[onclick*=fn_egov_inqire_notice]",
            "attr": "onclick",
            "regex": r"fn_egov_inqire_notice\('([^']+)'\)",
            "request": {
                "method": "POST",
                "from_form": "form[name=viewForm]",
                "form": {"nttId": "{1}"},
            },
        }
    ],
    "fields": {
        "title": {"css": "table.board_view td.subject", "type": "text", "required": True},
        "department": "table.board_view td.agency",
        "reference": "table.board_view td.reference",
        "views": {"css": "table.board_view td.views", "type": "int"},
        "amount": {
            "css": "table.board_view td.amount",
            "type": "decimal",
            "regex": r"\d[\d,]*(?:\.\d+)?",
        },
        "currency": "table.board_view td.currency",
        "status": {
            "css": "table.board_view td.status",
            "map": {"공고중": "active", "취소": "cancelled"},
        },
        "post_date": {
            "css": "table.board_view td.post-date",
            "type": "date",
            "formats": ["%Y-%m-%d"],
        },
        "deadline": {
            "css": "table.board_view td.deadline",
            "type": "datetime",
            "formats": ["%Y-%m-%d %H:%M"],
        },
    },
    "timezone": "Asia/Seoul",
}

_SCRIPT = """<script>
function fn_egov_select_noticeList(pageNo) {
  document.listForm.pageIndex.value = pageNo;
  document.listForm.submit();
}
function fn_egov_inqire_notice(nttId) {
  document.viewForm.nttId.value = nttId;
  document.viewForm.submit();
}
</script>
"""


def pages(config: BoardConfig, epoch: int) -> int:
    """How many list pages the board has in `epoch`."""
    return max(1, -(-len(tenders(config, epoch)) // config.per_page))


def page_tenders(config: BoardConfig, epoch: int, page: int) -> tuple[Tender, ...]:
    size = config.per_page
    return tenders(config, epoch)[(page - 1) * size : page * size]


def _pagination(page: int, count: int) -> str:
    def link(target: int, label: str, css: str = "") -> str:
        attrs = f' class="{css}"' if css else ""
        return (
            f'<a href="#"{attrs} onclick="fn_egov_select_noticeList({target}); return false;">'
            f"{label}</a>"
        )

    parts = []
    if page > 1:
        parts += [link(1, "처음", "first"), link(page - 1, "이전", "prev")]
    for number in range(max(1, page - 4), min(count, page + 4) + 1):
        parts.append(f"<strong>{number}</strong>" if number == page else link(number, str(number)))
    if page < count:
        parts += [link(page + 1, "다음", "next"), link(count, "끝", "last")]
    return '<div class="pagination">\n' + "\n".join(parts) + "\n</div>\n"


def list_html(config: BoardConfig, epoch: int, page: int) -> str:
    """list.do's page `page` (a page past the last shows an empty table)."""
    e = html.escape
    count = pages(config, epoch)
    total = len(tenders(config, epoch))
    rows = [
        f'<tr><td class="num">{t.notice.id}</td><td class="subject"><a href="#" '
        f"onclick=\"fn_egov_inqire_notice('{t.notice.id}'); return false;\">{e(t.notice.title)}"
        f'</a></td><td class="agency">{e(t.notice.department)}</td>'
        f'<td class="date">{t.notice.post_date.isoformat()}</td>'
        f'<td class="hits">{t.notice.views:,}</td></tr>'
        for t in page_tenders(config, epoch, page)
    ] or ['<tr><td colspan="5" class="empty">등록된 게시물이 없습니다.</td></tr>']
    return (
        head_html(f"공지사항 목록 {page}/{count}")
        + header_html(LIST_PATH)
        + '<main id="content">\n<h1>입찰공고 게시판 <small>eGovFrame board</small></h1>\n'
        + f'<p class="summary">총 {total:,}건 · {page}/{count} 페이지</p>\n'
        + '<table class="board_list">\n<thead><tr><th>번호</th><th>제목</th><th>기관</th>'
        + "<th>등록일</th><th>조회수</th></tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>\n"
        + _pagination(page, count)
        + f'<form id="listForm" name="listForm" method="post" action="{LIST_PATH}">\n'
        + f'<input type="hidden" name="pageIndex" value="{page}">\n'
        + '<input type="hidden" name="searchCnd" value="">\n'
        + '<input type="hidden" name="searchWrd" value="">\n</form>\n'
        + f'<form name="viewForm" method="post" action="{VIEW_PATH}">\n'
        + '<input type="hidden" name="nttId" value="">\n'
        + f'<input type="hidden" name="bbsId" value="{BBS_ID}">\n</form>\n'
        + _SCRIPT
        + "</main>\n"
        + FOOTER
    )


def view_html(tender: Tender) -> str:
    """view.do's page of one notice: the fields of the board's detail pages, and its status."""
    e = html.escape
    n = tender.notice
    rows = (
        ("제목", "subject", e(n.title)),
        ("공고번호", "reference", n.reference),
        ("수요기관", "agency", e(n.department)),
        ("등록일", "post-date", n.post_date.isoformat()),
        ("입찰마감", "deadline", n.deadline.strftime("%Y-%m-%d %H:%M")),
        ("추정가격", "amount", f"{int(n.amount):,}원"),
        ("통화", "currency", CURRENCY),
        ("공고상태", "status", _STATUS_WORDS[tender.status]),
        ("조회수", "views", f"{n.views:,}"),
    )
    table = "".join(
        f'<tr><th>{label}</th><td class="{css}">{value}</td></tr>\n' for label, css, value in rows
    )
    return (
        head_html(e(n.title))
        + header_html(LIST_PATH)
        + '<main id="content">\n<h1>입찰공고 상세</h1>\n'
        + f'<table class="board_view">\n{table}</table>\n'
        + f'<p><a href="{LIST_PATH}">목록</a></p>\n</main>\n'
        + FOOTER
    )


def error_html(message: str) -> str:
    """eGovFrame's error page."""
    return (
        head_html("오류")
        + header_html(LIST_PATH)
        + f'<main id="content">\n<h1 class="error">오류 Error</h1>\n<p>{html.escape(message)}</p>\n'
        + "</main>\n"
        + FOOTER
    )
