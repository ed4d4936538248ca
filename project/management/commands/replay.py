"""`manage.py replay LOG`: send a recorded access log again to a Forest of one's own
(docs/replay.md); `manage.py replay --compare A.json B.json`: before/after of two runs."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from project.replay import logfile, mapping, report, runner
from project.replay.target import TargetRefused, check_target

Number = TypeVar("Number", int, float)
DEFAULT_TARGET = "http://127.0.0.1:8000"
MAX_CONCURRENCY = 256


def _positive(
    kind: Callable[[str], Number], upper: Number | None = None
) -> Callable[[str], Number]:
    def parse(text: str) -> Number:
        value = kind(text)
        if value <= 0 or (upper is not None and value > upper):
            bound = f" and at most {upper}" if upper else ""
            raise ValueError(f"must be above 0{bound}")
        return value

    parse.__name__ = getattr(kind, "__name__", "number")  # argparse's "invalid float value"
    return parse


class Command(BaseCommand):
    help = (
        "Replay Forest's JSON access log against a loopback (or --allow'ed) Forest: ids mapped "
        "onto the target workspace, recorded inter-arrival times / --speed, at most "
        "--concurrency in flight; latency percentiles per route and over time."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("log", nargs="?", type=Path, help="JSON lines (LOG_FORMAT=json)")
        parser.add_argument("--target", default=DEFAULT_TARGET, help="the Forest to replay to")
        parser.add_argument(
            "--allow", action="append", default=[], metavar="HOST[:PORT]",
            help="a non-loopback target host allowed (repeatable)",
        )  # fmt: skip
        parser.add_argument(
            "--token", default=os.environ.get("FOREST_REPLAY_TOKEN", ""),
            help="API token of the target workspace (default: $FOREST_REPLAY_TOKEN)",
        )  # fmt: skip
        parser.add_argument(
            "--cookie", default=os.environ.get("FOREST_REPLAY_COOKIE", ""),
            help="Cookie header for the pages, e.g. sessionid=... ($FOREST_REPLAY_COOKIE)",
        )  # fmt: skip
        parser.add_argument("--speed", type=_positive(float, 1000.0), default=1.0)
        parser.add_argument("--concurrency", type=_positive(int, MAX_CONCURRENCY), default=8)
        parser.add_argument("--limit", type=_positive(int), default=None)
        parser.add_argument("--unsafe", action="store_true", help="also POST/PUT/PATCH/DELETE")
        parser.add_argument("--window", type=_positive(float), default=10.0, help="seconds")
        parser.add_argument("--timeout", type=_positive(float), default=30.0, help="per request")
        parser.add_argument("--max-bytes", type=_positive(int), default=64 * 1024 * 1024)
        parser.add_argument("--out", type=Path, help="write the result as JSON")
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
        parser.add_argument("--threshold", type=_positive(float), default=1.2, help="p95 ratio")
        parser.add_argument("--floor-ms", type=float, default=5.0, help="p95 growth ignored")

    def handle(self, *args: Any, **options: Any) -> None:
        # Rendered into a buffer, written through self.stdout (OutputWrapper adds line endings).
        buffer = io.StringIO()
        console = Console(file=buffer, width=120, no_color=True)
        if options["compare"]:
            self._compare(console, *options["compare"], **options)
            self.stdout.write(buffer.getvalue(), ending="")
            return
        if options["log"] is None:
            raise CommandError("give a LOG to replay (or --compare BEFORE AFTER)")
        try:
            base = check_target(options["target"], allow=options["allow"])
            read = logfile.read_log(
                options["log"], max_bytes=options["max_bytes"], limit=options["limit"]
            )
        except (TargetRefused, logfile.LogTooLarge, OSError) as exc:
            raise CommandError(str(exc)) from exc
        for number, reason in read.bad:
            self.stderr.write(f"{options['log']}:{number}: skipped, {reason}")
        auth = runner.Auth(token=options["token"], cookie=options["cookie"])
        pairs = list(logfile.entries_by_route(read.entries))
        recorded = mapping.recorded_ids(pairs)
        try:
            target_ids = asyncio.run(
                runner.target_session_ids(
                    base=base, auth=auth, kinds=set(recorded), timeout=options["timeout"]
                )
            )
        except runner.TargetError as exc:
            raise CommandError(str(exc)) from exc
        ids = mapping.IdMap.build(recorded, target_ids)
        todo = runner.plan(pairs, ids, speed=options["speed"], unsafe=options["unsafe"])
        started = dt.datetime.now(dt.UTC)
        samples = self._run(todo, base=base, auth=auth, options=options)
        meta = {
            "log": str(options["log"]),
            "target": base,
            "started": started.isoformat(),
            "elapsed_s": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 3),
            "speed": options["speed"],
            "concurrency": options["concurrency"],
            "window_s": options["window"],
            "unsafe": options["unsafe"],
            "entries": len(read.entries),
            "planned": len(todo.requests),
            "skipped": dict(todo.skipped),
            "bad_line_count": read.bad_count,
            "bad_lines": read.bad,
            "other_lines": read.other_lines,
            "truncated": read.truncated,
            "ids_mapped": {kind: len(table) for kind, table in ids.table.items()},
        }
        result = report.summarize(samples, window=options["window"], meta=meta)
        report.print_result(result, console)
        self.stdout.write(buffer.getvalue(), ending="")
        if options["out"]:
            options["out"].write_text(json.dumps(result, indent=1) + "\n")
            self.stdout.write(f"result written to {options['out']}")

    def _run(
        self, todo: runner.Plan, *, base: str, auth: runner.Auth, options: dict[str, Any]
    ) -> list[runner.Sample]:
        progress = Progress(
            TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[errors]} errors"),
            console=Console(file=sys.stderr),
            disable=options["no_progress"],
        )  # fmt: skip
        with progress:
            task = progress.add_task("replay", total=len(todo.requests), errors=0)
            errors = 0

            def done(sample: runner.Sample) -> None:
                nonlocal errors
                errors += sample.error is not None
                progress.update(task, advance=1, errors=errors)

            return asyncio.run(
                runner.replay(
                    todo.requests,
                    base=base,
                    auth=auth,
                    concurrency=options["concurrency"],
                    timeout=options["timeout"],
                    on_done=done,
                )
            )

    def _compare(
        self, console: Console, before_path: Path, after_path: Path, **options: Any
    ) -> None:
        try:
            before, after = (json.loads(p.read_text()) for p in (before_path, after_path))
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read a result: {exc}") from exc
        for name, doc in ((before_path, before), (after_path, after)):
            if not isinstance(doc, dict) or doc.get("version") != report.RESULT_VERSION:
                raise CommandError(f"{name} is not a replay result (--out of manage.py replay)")
        result = report.compare(
            before, after, threshold=options["threshold"], floor_ms=options["floor_ms"]
        )
        report.print_comparison(result, console)
        if options["out"]:
            options["out"].write_text(json.dumps(result, indent=1) + "\n")
