"""`manage.py import_bids SOURCE FILE`: import a CSV, JSON Lines or OCDS package file of bids into
a source (docs/imports.md), through the service the API uses; progress lines, then a summary.
Exit status: 0 imported (some rows may have failed: see the errors), 1 the import failed,
2 the file was refused (size, records, format)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crawls.models import ImportJob, Source
from crawls.services import imports

REFUSED = 2


class Command(BaseCommand):
    help = "Import bids from a CSV, JSON Lines or OCDS package file into a source."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", type=int, help="the source's id")
        parser.add_argument("file", type=Path, help="the file to import")
        parser.add_argument("--format", choices=ImportJob.Format.values, default="")
        parser.add_argument("--encoding", default="", help="default: UTF-8 (BOM or not), CP949")
        parser.add_argument("--errors", type=int, default=20, help="errors to print (default 20)")

    def handle(self, *args: object, **options: Any) -> None:
        try:
            source = Source.objects.get(pk=options["source"])
        except Source.DoesNotExist:
            raise CommandError(f"no source {options['source']}") from None
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        started = time.monotonic()
        with path.open("rb") as raw:
            try:
                job = imports.import_create(
                    source=source, user=None, raw=raw, filename=path.name,
                    size=path.stat().st_size, fmt=options["format"],
                    encoding=options["encoding"], keep=False,
                )  # fmt: skip
            except imports.ImportRejected as rejected:
                raise CommandError(
                    f"refused ({rejected.field}): {rejected}", returncode=REFUSED
                ) from None
            self.stdout.write(
                f"importing {job.rows_total} records of {path.name} ({job.format}, "
                f"{job.encoding}) into source {source.pk} as import {job.pk}"
            )
            ran = imports.import_run(job_id=job.pk, raw=raw, progress=self._progress)
        job = ran or job
        seconds = time.monotonic() - started
        rate = job.rows_done / seconds if seconds else 0.0
        self.stdout.write(
            f"{job.status}: {job.rows_done} records in {seconds:.1f}s ({rate:,.0f}/s): "
            f"{job.items_new} new, {job.items_changed} changed, {job.items_unchanged} unchanged, "
            f"{job.rows_failed} failed"
        )
        for error in job.errors[: options["errors"]]:
            where = "item" if job.format == ImportJob.Format.OCDS else "line"
            field = f" {error['field']}:" if error["field"] else ""
            self.stdout.write(f"  {where} {error['line']}:{field} {error['message']}")
        if job.status != ImportJob.Status.SUCCEEDED:
            raise CommandError(f"import {job.pk} failed: {job.error}")

    def _progress(self, job: ImportJob) -> None:
        share = job.rows_done / job.rows_total if job.rows_total else 1.0
        self.stdout.write(f"  {job.rows_done}/{job.rows_total} ({share:.0%})")
        sys.stdout.flush()
