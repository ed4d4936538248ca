"""The text board of bench/crawl.py: detail pages of 5-15 kB of text each behind a sequential
pager (listing page k lists 20 notices and links to page k+1 only, nothing else), exported as
static files next to the demo board's and served by the same nginx. Also the bare floor: an
aiohttp client that fetches every page of the board and parses it with selectolax, with no
frontier, no storage and no events - the most one process could do with these pages.

No Django: imported before it is set up.
"""

from __future__ import annotations

import asyncio
import html
import random
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from selectolax.lexbor import LexborHTMLParser as HTMLParser

PREFIX = "/text"
PER_PAGE = 20
# The same selectors for Forest (its rules) and Scrapy (its spider).
NEXT = "a.next"
ITEMS = "ul.notices a"
TEXT_FIELDS = {"title": "h1.title", "reference": "dd.reference", "summary": "div.body p"}
TEXT_RULES: dict = {
    "follow": [NEXT],
    "items": [ITEMS],
    "fields": {
        "title": {"css": TEXT_FIELDS["title"], "type": "text", "required": True},
        "reference": {"css": TEXT_FIELDS["reference"], "type": "text"},
        "summary": {"css": TEXT_FIELDS["summary"], "type": "text"},
    },
}
_WORDS = (
    "tender notice supply services works contract municipal district office public procurement "
    "bid deadline submission documents qualification evaluation award framework lot delivery "
    "maintenance construction road bridge school hospital water energy equipment software "
    "consulting design survey inspection repair cleaning security transport vehicle training "
    "the of and to for in on with by from at as is are be this that shall must may"
)
WORDS = tuple(_WORDS.split(" "))


@dataclass(frozen=True)
class TextItem:
    title: str
    reference: str
    summary: str


def _paragraphs(rng: random.Random, size: int) -> list[str]:
    paragraphs, total = [], 0
    while total < size:
        words = rng.choices(WORDS, k=rng.randint(40, 120))
        text = " ".join(words).capitalize() + "."
        paragraphs.append(text)
        total += len(text) + 7
    return paragraphs


def export(root: Path, notices: int, *, seed: int = 14) -> tuple[dict[str, TextItem], int]:
    """Write the board under root/text; (the items by URL path, the number of pages)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible board, not a secret
    base = root / PREFIX.lstrip("/")
    (base / "notices").mkdir(parents=True, exist_ok=True)
    (base / "page").mkdir(parents=True, exist_ok=True)
    items: dict[str, TextItem] = {}
    listing_pages = -(-notices // PER_PAGE)
    for page in range(1, listing_pages + 1):
        links = []
        for n in range((page - 1) * PER_PAGE + 1, min(page * PER_PAGE, notices) + 1):
            paragraphs = _paragraphs(rng, rng.randint(5_000, 15_000))
            item = TextItem(f"Notice {n}: {' '.join(rng.choices(WORDS, k=6))}", f"TXT-{n:05d}",
                            paragraphs[0])  # fmt: skip
            path = f"{PREFIX}/notices/{n}"
            items[path] = item
            body = "".join(f"<p>{html.escape(p)}</p>\n" for p in paragraphs)
            (root / path.lstrip("/")).write_text(
                f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(item.title)}"
                f"</title></head><body><h1 class=title>{html.escape(item.title)}</h1>\n"
                f"<dl><dt>Reference</dt><dd class=reference>{item.reference}</dd></dl>\n"
                f"<div class=body>\n{body}</div></body></html>\n"
            )
            links.append(f'<li><a href="{path}">{html.escape(item.title)}</a></li>')
        pager = f'<a class=next href="{PREFIX}/page/{page + 1}">Next</a>'
        (base / "page" / str(page)).write_text(
            f"<!doctype html><html><head><meta charset=utf-8><title>Notices, page {page}</title>"
            f"</head><body><ul class=notices>\n{''.join(links)}\n</ul>\n"
            f"{pager if page < listing_pages else ''}</body></html>\n"
        )
    return items, listing_pages + notices


def start_path() -> str:
    return f"{PREFIX}/page/1"


def page_paths(items: dict[str, TextItem]) -> list[str]:
    """Every page of the board: its listing pages and its detail pages."""
    listing_pages = -(-len(items) // PER_PAGE)
    return [f"{PREFIX}/page/{k}" for k in range(1, listing_pages + 1)] + list(items)


def floor_rate(base_url: str, paths: list[str], *, concurrency: int) -> tuple[float, float]:
    """The bare floor: every page fetched (`concurrency` at once, keep-alive) and parsed with
    selectolax (a detail page's fields, a listing page's links); (pages/s, CPU s per 1k pages)."""

    async def run() -> int:
        todo = iter(paths)
        found = 0
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(base_url, connector=connector) as session:

            async def client() -> None:
                nonlocal found
                for path in todo:
                    async with session.get(path) as response:
                        body = await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"{path}: HTTP {response.status}")
                    tree = HTMLParser(body)
                    if "/notices/" in path:
                        values = [tree.css_first(css) for css in TEXT_FIELDS.values()]
                        found += all(v is not None and v.text(strip=True) for v in values)
                    else:
                        found += len(tree.css(ITEMS)) > 0

            await asyncio.gather(*(client() for _ in range(concurrency)))
        return found

    cpu, started = time.process_time(), time.perf_counter()
    found = asyncio.run(run())
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if found != len(paths):
        raise RuntimeError(f"floor: {found} of {len(paths)} pages parsed")
    return len(paths) / seconds, cpu * 1000 / len(paths)
