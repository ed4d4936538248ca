"""The Scrapy side of bench/crawl.py's text board: the spider a Scrapy user would write for it.

Run by `scrapy runspider bench/crawl_text_spider.py -a start_url=… -O feed.jsonl`: it follows the
pager and the notice links (the selectors of TEXT_RULES) and yields one item per notice with the
fields Forest stores. Stand-alone: Scrapy and the standard library only (the selectors are
repeated from bench/crawl_text.py, which Scrapy's process need not import).
"""

from __future__ import annotations

import scrapy

FIELDS = {"title": "h1.title", "reference": "dd.reference", "summary": "div.body p"}


def _text(response, css: str) -> str | None:
    value = response.css(f"{css}::text").get()
    return " ".join(value.split()) if value is not None else None


class TextNoticesSpider(scrapy.Spider):
    name = "text-notices"

    def __init__(self, start_url: str, **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start_url]

    def parse(self, response):
        yield from response.follow_all(css="a.next", callback=self.parse)
        yield from response.follow_all(css="ul.notices a", callback=self.parse_notice)

    def parse_notice(self, response):
        yield {"url": response.url, **{name: _text(response, css) for name, css in FIELDS.items()}}
