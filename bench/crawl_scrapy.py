"""bench-crawl's peer: one Scrapy crawl of the board with Scrapy's defaults (bench/crawl_spider.py,
bench/crawl_text_spider.py), checked item by item against what the board holds (bench/crawl.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from bench import crawl_text
from bench.crawl_board import Server

SPIDER = Path(__file__).resolve().parent / "crawl_spider.py"
TEXT_SPIDER = Path(__file__).resolve().parent / "crawl_text_spider.py"


@dataclass
class ScrapyRun:
    pages: int  # the board's
    fetched: int  # robots.txt left out
    seconds: float  # stats: elapsed_time_seconds (spider opened → closed)
    wall_seconds: float  # the whole `scrapy runspider` process
    cpu_seconds: float
    peak_rss_mb: float
    items: int


def _stat(text: str, name: str) -> str:
    match = re.search(rf"'{re.escape(name)}': ([^,\n}}]+)", text)
    if match is None:
        raise RuntimeError(f"Scrapy's stats have no {name!r}")
    return match.group(1).strip().strip("'")


def _same(item: dict, bid: dict) -> bool:
    return (
        item["title"] == bid["title"]
        and item["department"] == bid["department"]
        and item["reference"] == bid["reference"]
        and item["views"] == bid["views"]
        and Decimal(item["amount"]) == bid["amount"]
        and date.fromisoformat(item["post_date"]) == bid["post_date"]
        and datetime.fromisoformat(item["deadline"]) == bid["deadline"]
        and item["attachment"] == bid["extra"]["attachment"]
    )


def _same_text(item: dict, expected: crawl_text.TextItem) -> bool:
    return (
        item["title"] == expected.title
        and item["reference"] == expected.reference
        and item["summary"] == expected.summary
    )


def scrapy_once(
    server: Server,
    *,
    concurrency: int,
    tmp: Path,
    run: int,
    expected: dict,
    pages: int,
    extra_settings: list[str],
    board: str = "demo",
) -> ScrapyRun:
    """A run of the demo board's spider, or (board="text") of the text board's."""
    text = board == "text"
    spider, start_url = (
        (TEXT_SPIDER, f"{server.base_url}{crawl_text.start_path()}")
        if text
        else (SPIDER, server.start_url)
    )
    same = _same_text if text else _same
    feed, output = tmp / f"scrapy-{board}-{run}.jsonl", tmp / f"scrapy-{board}-{run}.log"
    settings = {
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "ROBOTSTXT_OBEY": True,
        # Stock is DEBUG: a line per request and per item. INFO makes Scrapy faster, not slower.
        "LOG_LEVEL": "INFO",
    }
    args = [sys.executable, "-m", "scrapy", "runspider", str(spider)]
    args += ["-a", f"start_url={start_url}", "-O", f"{feed}:jsonlines"]
    for key, value in settings.items():
        args += ["-s", f"{key}={value}"]
    for setting in extra_settings:
        args += ["-s", setting]
    started = time.monotonic()
    with output.open("wb") as handle:
        proc = subprocess.Popen(
            args, cwd=tmp, stdin=subprocess.DEVNULL, stdout=handle, stderr=handle
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    text = output.read_text(errors="replace")
    if (
        proc.returncode != 0
        or "'finish_reason': 'finished'" not in text
        or "'log_count/ERROR'" in text
    ):
        raise RuntimeError(f"scrapy failed ({proc.returncode}):\n{text[-4000:]}")
    fetched = int(_stat(text, "downloader/response_count"))
    robots = int(_stat(text, "robotstxt/response_count"))
    items = [json.loads(line) for line in feed.read_text().splitlines()]
    by_url = {item["url"]: item for item in items}
    if len(items) != len(expected) or by_url.keys() != expected.keys():
        raise RuntimeError(
            f"scrapy: {len(items)} items ({len(by_url)} URLs), {len(expected)} expected"
        )
    wrong = [url for url, item in by_url.items() if not same(item, expected[url])]
    if wrong:
        raise RuntimeError(f"scrapy: {len(wrong)} items differ from the board, e.g. {wrong[0]}")
    # Start requests skip the duplicate filter: Scrapy fetches the start page a second time when
    # page 2 links back to it. The rate counts the board's pages for both sides.
    if fetched - robots not in (pages, pages + 1):
        raise RuntimeError(f"scrapy: {fetched - robots} pages fetched, {pages} expected")
    return ScrapyRun(
        pages=pages,
        fetched=fetched - robots,
        seconds=float(_stat(text, "elapsed_time_seconds")),
        wall_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        items=len(items),
    )
