"""A page of the demo boards and the frame their HTML shares: Page (a body rendered once, split
where the request's origin goes, with its validators), page_render, and the head, header and
footer of the board's pages (crawls.demo.site, egov).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

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


def page_render(
    content: str | bytes, kind: str, modified: datetime, content_type: str = HTML, **kw: Any
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


def head_html(title: str, extra: str = "") -> str:
    return (
        '<!DOCTYPE html>\n<html lang="ko">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title} | 공공입찰 알림판 · Forest demo board</title>\n{extra}"
        f"<style>{_CSS}</style>\n</head>\n"
    )


def header_html(home: str) -> str:
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


FOOTER = """<footer class="site-footer"><div class="inner">
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
