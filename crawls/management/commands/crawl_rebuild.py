"""`manage.py crawl_rebuild ID [ID ...] [--json]`: rebuild crawls from their event logs and
report where a row differs from its log. Exit status 0 all equal, 1 a difference, 2 no crawl."""

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from crawls import services
from crawls.models import Crawl
from crawls.services.rebuild import Comparison


class Command(BaseCommand):
    help = (
        "Recompute crawls' state (status, counters, errors by class, times) from their event "
        "logs alone and print every field where the row differs; exit status 1 when one does."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("crawl", nargs="+", type=int, help="crawl id")
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="one JSON object per crawl"
        )

    def handle(self, *args: Any, crawl: list[int], as_json: bool, **options: Any) -> None:
        differ = False
        for crawl_id in crawl:
            try:
                comparison = services.crawl_rebuild(crawl_id=crawl_id)
            except Crawl.DoesNotExist:
                raise CommandError(f"no crawl {crawl_id}", returncode=2) from None
            differ |= not comparison.equal
            if as_json:
                self.stdout.write(_json(comparison.as_json()))
            else:
                self._report(comparison)
        if differ:
            raise SystemExit(1)

    def _report(self, comparison: Comparison) -> None:
        write = self.stdout.write
        head = f"crawl {comparison.crawl_id}: {len(comparison.compared)} fields rebuilt from "
        head += f"{comparison.events} events"
        if comparison.equal:
            write(f"{head}: all equal to the row")
        else:
            write(f"{head}: {len(comparison.differences)} differ from the row")
            for name, (row, log) in comparison.differences.items():
                write(f"  {name}: row {_json(row)}, log {_json(log)}")
        if comparison.after_final:
            write(
                f"  {len(comparison.after_final)} events after the final one "
                f"({', '.join(comparison.after_final[:5])}): work committed after the crawl ended"
            )
        for name, reason in comparison.not_derivable.items():
            write(f"  not derivable: {name} ({reason})")


def _json(value: object) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)
