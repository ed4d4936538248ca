"""`manage.py subscribers_catch_up [--crawl N] [--window-seconds S]`: what beat's catch-up does,
by hand (crawls/subscribers.py)."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from crawls import subscribers


class Command(BaseCommand):
    help = (
        "Deliver the crawl events each subscriber has not taken yet: of the crawls active or "
        "finished within SUBSCRIBER_CATCH_UP_WINDOW_SECONDS, or of one crawl whatever its age."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--crawl", type=int, help="only this crawl (any age)")
        parser.add_argument(
            "--window-seconds", type=int, help="instead of SUBSCRIBER_CATCH_UP_WINDOW_SECONDS"
        )

    def handle(
        self,
        *args: Any,
        crawl: int | None = None,
        window_seconds: int | None = None,
        **options: Any,
    ) -> None:
        taken = subscribers.subscribers_catch_up(crawl_id=crawl, window_seconds=window_seconds)
        for crawl_id, counts in taken.items():
            for path, count in counts.items():
                self.stdout.write(f"crawl {crawl_id}: {path} took {count} event(s)")
        if not taken:
            self.stdout.write("every subscriber is up to date")
