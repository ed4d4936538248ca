"""`manage.py demo_board`: serve the demo board of bid notices, or export it as static files."""

import asyncio
import signal
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from crawls.demo import board
from crawls.demo.board import BoardConfig, export_static, start_board

DEFAULTS = BoardConfig()


class Command(BaseCommand):
    help = (
        "Serve the demo board (a deterministic website of bid notices for crawling) with aiohttp "
        "until Ctrl-C or SIGTERM, or write it as static files with --export DIR."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--listing-pages", type=int, default=DEFAULTS.listing_pages)
        parser.add_argument("--per-page", type=int, default=DEFAULTS.per_page)
        parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
        parser.add_argument("--crawl-delay", type=float, default=None)
        parser.add_argument("--no-hostile", action="store_true", help="No /hostile/ endpoints.")
        parser.add_argument(
            "--bench",
            type=int,
            metavar="N",
            help="The benchmark board: N detail pages, all well-behaved (overrides the above).",
        )
        parser.add_argument("--export", metavar="DIR", help="Write static files instead.")

    def handle(
        self,
        *args: Any,
        host: str,
        port: int,
        export: str | None,
        bench: int | None,
        **options: Any,
    ) -> None:
        try:
            config = (
                BoardConfig.bench(bench)
                if bench
                else BoardConfig(
                    listing_pages=options["listing_pages"],
                    per_page=options["per_page"],
                    seed=options["seed"],
                    crawl_delay=options["crawl_delay"],
                    hostile=not options["no_hostile"],
                )
            )
        except ValueError as error:
            raise CommandError(str(error)) from error
        if export:
            count = export_static(config, Path(export))
            self.stdout.write(f"Wrote {count} files to {export}")
            return
        asyncio.run(self._serve(config, host, port))

    async def _serve(self, config: BoardConfig, host: str, port: int) -> None:
        runner, bound = await start_board(config, host, port)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        shown = f"[{shown}]" if ":" in shown else shown
        self.stdout.write(
            f"Demo board at http://{shown}:{bound}/notices "
            f"({config.listing_pages} listing pages). Ctrl-C stops it.\n"
            f"  JSON API     http://{shown}:{bound}{board.API_PATH}"
            f" (X-Api-Key: {board.DEMO_API_KEY})\n"
            f"  XML service  http://{shown}:{bound}{board.XML_PATH}"
            f"?serviceKey={board.DEMO_SERVICE_KEY}\n"
            f"  OCDS feed    http://{shown}:{bound}{board.OCDS_RELEASES_PATH}\n"
            f"  eGov board   http://{shown}:{bound}{board.EGOV_LIST_PATH}"
        )
        self.stdout.flush()
        try:
            await stopping.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await runner.cleanup()
        self.stdout.write("Demo board stopped.")
