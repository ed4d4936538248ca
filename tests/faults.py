"""Crawl-event subscribers that misbehave on purpose: tests name them in a program's
CRAWL_EVENT_SUBSCRIBERS (the environment) or in settings, beside the real ones."""

from __future__ import annotations

import os
import time
from pathlib import Path

from crawls import events
from crawls.models import CrawlEvent

# Set by tests running in-process: while True, `flaky` raises.
failing = {"flaky": False}


def _marker_first_time(variable: str) -> bool:
    """True the first time in all processes (the file named by $variable made here)."""
    name = os.environ.get(variable)
    if not name:
        return False
    try:
        os.close(os.open(Path(name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def exit_once_on_items(event: CrawlEvent) -> None:
    """Kill this process as a crash (no cleanup, no rollback but the server's) on the first
    crawl.items event; $FAULT_MARKER makes it once."""
    if event.type == events.ITEMS and _marker_first_time("FAULT_MARKER"):
        os._exit(1)


def record(event: CrawlEvent) -> None:
    """Append "crawl sequence pid" to the file $RECORD_FILE (or the in-process list), slowly
    enough for concurrent deliverers to interleave."""
    name = os.environ.get("RECORD_FILE")
    if name is None:
        recorded.append((event.crawl_id, event.sequence))
        return
    with open(name, "a") as out:
        out.write(f"{event.crawl_id} {event.sequence} {os.getpid()}\n")
    time.sleep(float(os.environ.get("RECORD_SLEEP", "0")))


recorded: list[tuple[int, int]] = []


def flaky(event: CrawlEvent) -> None:
    """Raises while failing["flaky"] is set (in-process) or $FLAKY_ALWAYS is set."""
    if failing["flaky"] or os.environ.get("FLAKY_ALWAYS"):
        raise ConnectionError(f"flaky subscriber refuses {event}")
    recorded_flaky.append((event.crawl_id, event.sequence))


recorded_flaky: list[tuple[int, int]] = []
