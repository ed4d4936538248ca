"""Importing bids from a file (docs/imports.md): check, create the job, run it.

`import_check` reads the file once, streamed, before anything is written: size (413), format,
encoding and header (400 naming the field), record count (400 over IMPORT_MAX_ROWS).
`import_run` reads it again and stores its bids IMPORT_BATCH at a time through the crawl's own
store (crawls.engine.store.bids_store: upsert, revisions of changed fields, a re-run changes
nothing), each batch one transaction with its `crawl.items` event. The job runs as a crawl of
its own (a Crawl row, started and finished like one), so that revisions name it and the
subscribers (alerts, analytics) take its events as they take a crawl's. Each batch is stored
under the run's lease on the job (crawls/services/import_jobs.py): a run that died is taken
over and the new one goes on after the records already stored.
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
from crawls.engine import store
from crawls.imports import readers, rows
from crawls.models import Crawl, ImportJob, Source
from crawls.services import import_jobs
from project import dbscope

logger = logging.getLogger(__name__)

TASK = import_jobs.TASK
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
            job.path, job.heartbeat_at = str(path), timezone.now()
            job.save(update_fields=["path", "heartbeat_at"])
            transaction.on_commit(lambda: import_jobs.job_enqueue(job.pk))
    return job


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
    task_id: str = "",
    stopping: Callable[[], bool] | None = None,
) -> ImportJob | None:
    """Run a queued job (its kept file, or `raw`), or take over one whose run died and go on
    from its last stored batch (import_jobs.job_claim); None when another run has it, or when
    `stopping()` turned true (the worker is stopping: the job was handed to a new task).
    Failures end the job (and its crawl) failed with the reason, never raise."""
    run = import_jobs.job_claim(job_id=job_id, task_id=task_id)
    if run is None:
        return None  # another run has it, or it ended
    opened, error = raw, ""
    try:
        if opened is None:
            opened = _kept_open(run.job)
        _rows_store(run, opened, progress, stopping)
    except import_jobs.LeaseLost:
        logger.warning("import %s: taken over by another run, this one stops", job_id)
        return None
    except import_jobs.HandBack:
        import_jobs.job_hand_back(run)
        return None
    except Exception as exc:
        logger.exception("import %s failed", job_id)
        error = str(exc)[:2000] or type(exc).__name__
    finally:
        if raw is None and opened is not None:
            opened.close()
    if not import_jobs.job_finish(run, error=error):
        return None
    ended: ImportJob = ImportJob.objects.select_related("crawl").get(pk=job_id)
    return ended


class ImportFileGone(Exception):
    """The job's kept file is not where the web process left it."""


def _kept_open(job: ImportJob) -> IO[bytes]:
    try:
        return open(job.path, "rb")  # the caller closes it
    except FileNotFoundError:
        raise ImportFileGone(
            f"the import's file is gone (No such file): {job.path}; the web process keeps "
            f"uploads in IMPORT_DIR ({settings.IMPORT_DIR}), which the workers must share"
        ) from None


@dataclass(slots=True)
class _Read:
    """A batch of items read and typed, with the reading's figures so far (a snapshot)."""

    items: list[store.Item]
    done: int
    failed: int
    errors: list[dict[str, object]]


_END = object()  # the reader's last message


def _rows_store(
    run: import_jobs.Run,
    raw: IO[bytes],
    progress: Callable[[ImportJob], None] | None,
    stopping: Callable[[], bool] | None,
) -> None:
    """Store the file's batches as a thread reads and types the next ones (pure Python, no
    database: it runs while this thread waits on PostgreSQL). A run that took the job over
    starts from the job's stored figures and skips the records they count."""
    job = run.job
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
    tally = _Tally(
        done=job.rows_done,
        failed=job.rows_failed,
        new=job.items_new,
        changed=job.items_changed,
        unchanged=job.items_unchanged,
    )
    try:
        while (message := batches.get()) is not _END:
            if isinstance(message, BaseException):
                raise message
            assert isinstance(message, _Read)  # noqa: S101 - the queue's one other type
            tally.done, tally.failed = message.done, message.failed
            _batch_store(run, message.items, tally, message.errors, progress)
            if stopping is not None and stopping():
                raise import_jobs.HandBack
    finally:
        stop.set()
        thread.join()


def _batches_read(job: ImportJob, raw: IO[bytes]) -> Iterator[_Read]:
    """The file's items, IMPORT_BATCH at a time, with the figures and errors so far; the last
    batch may be empty (the figures of the file's end). The job's first `rows_done` records are
    stored already (a takeover): read past, not typed, their figures and errors the job's."""
    source = job.source
    base_url = (source.start_urls[0] if source.start_urls else "").partition("#")[0]
    tz = _zone(source)
    stored, done, failed = job.rows_done, 0, job.rows_failed
    errors: list[dict[str, object]] = list(job.errors)
    batch: list[store.Item] = []

    def error(line: int, field: str, message: str) -> None:
        if len(errors) < settings.IMPORT_MAX_ERRORS:
            errors.append({"line": line, "field": field, "message": message[:300]})

    for record in readers.read(raw, job.format, encoding=job.encoding, limits=import_limits()):
        done += 1
        if not done % YIELD_ROWS:
            time.sleep(0)  # hand the GIL to the storing thread if PostgreSQL has answered it
        if done <= stored:
            continue
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
    run: import_jobs.Run,
    batch: list[store.Item],
    tally: _Tally,
    errors: list[dict[str, object]],
    progress: Callable[[ImportJob], None] | None,
) -> None:
    """One transaction, under the run's lease (LeaseLost if another run took the job over):
    the batch's bids and revisions, its event, the figures, the heartbeat."""
    job, crawl = run.job, run.crawl
    now = timezone.now()
    with transaction.atomic():
        import_jobs.batch_lease_check(run)
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
        job.heartbeat_at = now
        job.save(
            update_fields=[
                "rows_done", "rows_failed", "items_new", "items_changed", "items_unchanged",
                "errors", "heartbeat_at",
            ]
        )  # fmt: skip
    if progress is not None:
        progress(job)


def _zone(source: Source) -> zoneinfo.ZoneInfo:
    """The zone naive dates of the file are in: the source's rules' timezone, else TIME_ZONE."""
    name = source.rules.get("timezone") if isinstance(source.rules, dict) else None
    try:
        return zoneinfo.ZoneInfo(name if isinstance(name, str) else settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)
