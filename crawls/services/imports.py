"""Importing bids from a file (docs/imports.md): check, create the job, run it.

`import_check` reads the file once, streamed, before anything is written: size (413), format,
encoding and header (400 naming the field), record count (400 over IMPORT_MAX_ROWS).
`import_run` reads it again and stores its bids IMPORT_BATCH at a time through the crawl's own
store (crawls.engine.store.bids_store: upsert, revisions of changed fields, a re-run changes
nothing), each batch one transaction with its `crawl.items` event. The job runs as a crawl of
its own (a Crawl row, started and finished like one), so that revisions name it and the
subscribers (alerts, analytics) take its events as they take a crawl's.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
import uuid
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from crawls import events
from crawls.engine import lifecycle, store
from crawls.imports import readers, rows
from crawls.models import Crawl, ImportJob, Source
from project import dbscope
from project.celery import app as celery_app

logger = logging.getLogger(__name__)

TASK = "crawls.import_run"
YIELD_ROWS = 16
READ_AHEAD = 2  # batches read and typed ahead of the one being stored


class ImportRejected(Exception):
    """The file cannot be imported: `field` to name, `status` to answer (400 or 413)."""

    def __init__(self, field: str, message: str, *, status: int = 400):
        super().__init__(message)
        self.field = field
        self.status = status


@dataclass(frozen=True, slots=True)
class Checked:
    format: str
    encoding: str
    rows: int


def import_limits() -> readers.Limits:
    return readers.Limits(
        line_chars=settings.IMPORT_MAX_LINE_CHARS,
        fields=settings.IMPORT_MAX_FIELDS,
        depth=settings.JSON_MAX_DEPTH,
    )


def import_check(
    *, raw: IO[bytes], filename: str, size: int, fmt: str = "", encoding: str = ""
) -> Checked:
    """Size, format, encoding, header and record count of a file (read once, streamed);
    ImportRejected says what is wrong. Leaves `raw` at its start."""
    if size > settings.IMPORT_MAX_BYTES:
        raise ImportRejected(
            "file", f"the file is larger than {settings.IMPORT_MAX_BYTES} bytes", status=413
        )
    limit = settings.IMPORT_MAX_ROWS
    count = 0
    try:
        fmt = readers.guess_format(filename, fmt)
        encoding = "utf-8" if fmt == "ocds" else readers.sniff_encoding(raw, encoding)
        for _record in readers.read(raw, fmt, encoding=encoding, limits=import_limits()):
            count += 1
            if count > limit:
                raise ImportRejected("file", f"the file holds more than {limit} records")
    except readers.FormatError as exc:
        raise ImportRejected(exc.field, str(exc)) from None
    finally:
        raw.seek(0)
    if count == 0:
        raise ImportRejected("file", "the file holds no records")
    return Checked(fmt, encoding, count)


def import_create(
    *,
    source: Source,
    user: Any,
    raw: IO[bytes],
    filename: str,
    size: int,
    fmt: str = "",
    encoding: str = "",
    keep: bool | None = None,
) -> ImportJob:
    """Check the file and queue its job; with `keep` (default: a file of more than
    IMPORT_SYNC_MAX_ROWS records), copy the file to IMPORT_DIR and send the job's task when the
    transaction commits (else the caller runs it at once: import_run with the file)."""
    checked = import_check(raw=raw, filename=filename, size=size, fmt=fmt, encoding=encoding)
    if keep is None:
        keep = checked.rows > settings.IMPORT_SYNC_MAX_ROWS
    with transaction.atomic():
        job = ImportJob.objects.create(
            workspace_id=source.workspace_id,
            source=source,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            filename=filename[:255],
            format=checked.format,
            encoding=checked.encoding,
            rows_total=checked.rows,
        )
        if keep:
            folder = settings.IMPORT_DIR
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{job.pk}-{uuid.uuid4().hex}"
            with path.open("wb") as kept:
                shutil.copyfileobj(raw, kept, 1024 * 1024)
            raw.seek(0)
            job.path = str(path)
            job.save(update_fields=["path"])
            transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: int) -> None:
    celery_app.send_task(TASK, args=[job_id], queue=settings.CRAWL_QUEUE)


@dataclass(slots=True)
class _Tally:
    done: int = 0
    failed: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    # Whether the last batch was mostly new bids: then the next is inserted first (the store's
    # insert_first), else looked up first (a re-import: inserting would only meet conflicts).
    mostly_new: bool = True


def import_run(
    *,
    job_id: int,
    raw: IO[bytes] | None = None,
    progress: Callable[[ImportJob], None] | None = None,
) -> ImportJob | None:
    """Run a queued job (its kept file, or `raw`); None when another process has it. Failures
    end the job (and its crawl) failed with the reason, never raise."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=now
    )
    if not claimed:
        return None  # another process got there first, or it ended
    job = ImportJob.objects.select_related("source").get(pk=job_id)
    crawl = _crawl_start(job)
    opened, error = raw, ""
    try:
        if opened is None:
            opened = open(job.path, "rb")  # noqa: SIM115 - closed below
        _rows_store(job, crawl, opened, progress)
    except Exception as exc:
        logger.exception("import %s failed", job.pk)
        error = str(exc)[:2000] or type(exc).__name__
    finally:
        if raw is None and opened is not None:
            opened.close()
        if job.path:  # before the job ends: whoever sees it ended sees the file gone
            _remove(job.path)
    status = ImportJob.Status.FAILED if error else ImportJob.Status.SUCCEEDED
    _finish(job, crawl, status, error=error)
    job.refresh_from_db()
    return job  # type: ignore[no-any-return]


def _crawl_start(job: ImportJob) -> Crawl:
    """The job's own crawl, running, with its started event."""
    now = timezone.now()
    with transaction.atomic():
        crawl = Crawl.objects.create(
            workspace_id=job.workspace_id,
            source_id=job.source_id,
            created_by_id=job.created_by_id,
            status=Crawl.Status.RUNNING,
            started_at=now,
            heartbeat_at=now,
        )
        ImportJob.objects.filter(pk=job.pk).update(crawl=crawl)
        job.crawl = crawl
        events.event_append(
            crawl_id=crawl.pk,
            workspace_id=crawl.workspace_id,
            type=events.STARTED,
            payload={"attempt": 1, "source": job.source_id, "import": job.pk},
        )
    return crawl


@dataclass(slots=True)
class _Read:
    """A batch of items read and typed, with the reading's figures so far (a snapshot)."""

    items: list[store.Item]
    done: int
    failed: int
    errors: list[dict[str, object]]


_END = object()  # the reader's last message


def _rows_store(
    job: ImportJob, crawl: Crawl, raw: IO[bytes], progress: Callable[[ImportJob], None] | None
) -> None:
    """Store the file's batches as a thread reads and types the next ones (pure Python, no
    database: it runs while this thread waits on PostgreSQL)."""
    batches: queue.Queue[object] = queue.Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def put(message: object) -> bool:
        while not stop.is_set():
            try:
                batches.put(message, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            for read in _batches_read(job, raw):
                if not put(read):
                    return
            put(_END)
        except BaseException as exc:  # handed to the storing thread, raised there
            put(exc)

    thread = threading.Thread(
        target=dbscope.carried(reader), name=f"import-{job.pk}-reader", daemon=True
    )
    thread.start()
    tally = _Tally()
    try:
        while (message := batches.get()) is not _END:
            if isinstance(message, BaseException):
                raise message
            assert isinstance(message, _Read)  # noqa: S101 - the queue's one other type
            tally.done, tally.failed = message.done, message.failed
            _batch_store(job, crawl, message.items, tally, message.errors, progress)
    finally:
        stop.set()
        thread.join()


def _batches_read(job: ImportJob, raw: IO[bytes]) -> Iterator[_Read]:
    """The file's items, IMPORT_BATCH at a time, with the figures and errors so far; the last
    batch may be empty (the figures of the file's end)."""
    source = job.source
    base_url = (source.start_urls[0] if source.start_urls else "").partition("#")[0]
    tz = _zone(source)
    done = failed = 0
    errors: list[dict[str, object]] = []
    batch: list[store.Item] = []

    def error(line: int, field: str, message: str) -> None:
        if len(errors) < settings.IMPORT_MAX_ERRORS:
            errors.append({"line": line, "field": field, "message": message[:300]})

    for record in readers.read(raw, job.format, encoding=job.encoding, limits=import_limits()):
        done += 1
        if not done % YIELD_ROWS:
            time.sleep(0)  # hand the GIL to the storing thread if PostgreSQL has answered it
        if isinstance(record, readers.RowError):
            failed += 1
            error(record.line, record.field, record.message)
        elif job.format == ImportJob.Format.OCDS:
            items, problems = rows.ocds_items(
                record.data["package"], record.data["item"], base_url=base_url, tz=tz
            )
            for field, message in problems:
                error(record.line, field, message)
            failed += not items
            batch.extend(store.item_prepare(item) for item in items)
        else:
            try:
                batch.append(
                    store.item_prepare(rows.row_item(record.data, base_url=base_url, tz=tz))
                )
            except rows.RowInvalid as exc:
                failed += 1
                error(record.line, exc.field, str(exc))
        if len(batch) >= settings.IMPORT_BATCH:
            yield _Read(batch, done, failed, list(errors))
            batch = []
    yield _Read(batch, done, failed, list(errors))


def _batch_store(
    job: ImportJob,
    crawl: Crawl,
    batch: list[store.Item],
    tally: _Tally,
    errors: list[dict[str, object]],
    progress: Callable[[ImportJob], None] | None,
) -> None:
    """One transaction: the batch's bids and revisions, its event, the figures."""
    now = timezone.now()
    with transaction.atomic():
        stored = store.Stored()
        if batch:
            stored = store.bids_store(
                crawl_id=crawl.pk,
                source_id=job.source_id,
                workspace_id=job.workspace_id,
                items=batch,
                now=now,
                touch=False,  # an import does not rewrite the bids it leaves unchanged
                insert_first=tally.mostly_new,
            )
        if stored.new or stored.changed:
            events.event_append(
                crawl_id=crawl.pk,
                workspace_id=job.workspace_id,
                type=events.ITEMS,
                payload={"new": stored.new, "changed": stored.changed, "import": job.pk},
            )
        if batch:
            tally.mostly_new = 2 * len(stored.new) >= len(batch)
        tally.new += len(stored.new)
        tally.changed += len(stored.changed)
        tally.unchanged += stored.unchanged
        Crawl.objects.filter(pk=crawl.pk).update(
            items_new=F("items_new") + len(stored.new),
            items_changed=F("items_changed") + len(stored.changed),
            items_unchanged=F("items_unchanged") + stored.unchanged,
            heartbeat_at=now,
        )
        job.rows_done, job.rows_failed = tally.done, tally.failed
        job.items_new, job.items_changed = tally.new, tally.changed
        job.items_unchanged, job.errors = tally.unchanged, errors
        job.save(
            update_fields=[
                "rows_done", "rows_failed", "items_new", "items_changed", "items_unchanged",
                "errors",
            ]
        )  # fmt: skip
    if progress is not None:
        progress(job)


def _finish(job: ImportJob, crawl: Crawl, status: str, *, error: str = "") -> None:
    """End the job and its crawl (succeeded or failed, with the crawl's final event)."""
    now = timezone.now()
    succeeded = status == ImportJob.Status.SUCCEEDED
    with transaction.atomic():
        locked = Crawl.objects.select_for_update().get(pk=crawl.pk)
        if locked.status not in Crawl.FINISHED:
            locked.status = Crawl.Status.SUCCEEDED if succeeded else Crawl.Status.FAILED
            locked.error, locked.finished_at = error, now
            locked.save(update_fields=["status", "error", "finished_at"])
            events.event_append(
                crawl_id=crawl.pk,
                workspace_id=crawl.workspace_id,
                type=events.SUCCEEDED if succeeded else events.FAILED,
                payload={**lifecycle.crawl_final_figures(locked), "import": job.pk, "error": error},
            )
        ImportJob.objects.filter(pk=job.pk).update(
            status=status, error=error, finished_at=now, path=""
        )


def _remove(path: str) -> None:
    try:
        settings.IMPORT_DIR.joinpath(path).unlink(missing_ok=True)
    except OSError:
        logger.warning("could not remove the import file %s", path)


def _zone(source: Source) -> zoneinfo.ZoneInfo:
    """The zone naive dates of the file are in: the source's rules' timezone, else TIME_ZONE."""
    name = source.rules.get("timezone") if isinstance(source.rules, dict) else None
    try:
        return zoneinfo.ZoneInfo(name if isinstance(name, str) else settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)
