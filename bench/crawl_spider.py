"""The Scrapy side of bench/crawl.py: the spider a Scrapy user would write for the demo board.

Run by `scrapy runspider bench/crawl_spider.py -a start_url=… -O feed.jsonl`: it follows the
listing's pagination and notice links (the selectors of DEMO_RULES) and yields one item per
notice with the fields Forest stores, converted to the same types (JSON-ready: numbers, ISO
dates), so that both sides do comparable work per page. Stand-alone: Scrapy and the standard
library only.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import scrapy

SEOUL = ZoneInfo("Asia/Seoul")
AMOUNT = re.compile(r"\d[\d,]*(?:\.\d+)?")


def _date(text: str) -> str:
    # The board writes dates both ways, as DEMO_RULES' formats say.
    for fmt in ("%Y.%m.%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).date().isoformat()  # noqa: DTZ007 - a date
        except ValueError:
            continue
    raise ValueError(f"not a date: {text!r}")


def _text(response, css: str) -> str | None:
    value = response.css(css).get()
    return " ".join(value.split()) if value is not None else None


class NoticesSpider(scrapy.Spider):
    name = "notices"

    def __init__(self, start_url: str, **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start_url]

    def parse(self, response):
        yield from response.follow_all(css="nav.pagination a", callback=self.parse)
        yield from response.follow_all(css="table.notices td.title a", callback=self.parse_notice)

    def parse_notice(self, response):
        views = _text(response, "dd.views::text")
        amount = AMOUNT.search(_text(response, "dd.amount::text") or "")
        post_date = _text(response, "dd.post-date::text")
        deadline = _text(response, "dd.deadline::text")
        attachment = response.css("a.attachment::attr(href)").get()
        yield {
            "url": response.url,
            "title": _text(response, "h1.notice-title::text"),
            "department": _text(response, "dd.department::text"),
            "reference": _text(response, "dd.reference::text"),
            "views": int(views.replace(",", "")) if views else None,
            "amount": amount.group(0).replace(",", "") if amount else None,
            "post_date": _date(post_date) if post_date else None,
            "deadline": (
                datetime.strptime(deadline, "%Y-%m-%d %H:%M").replace(tzinfo=SEOUL).isoformat()
                if deadline
                else None
            ),
            "attachment": response.urljoin(attachment) if attachment else None,
        }
