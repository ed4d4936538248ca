"""Import benchmark: a 100,000-row CSV of bids through the import service, beside a naive loop.

Forest: the file (varied fields, Korean titles and departments) checked and imported through
crawls.services.imports (import_create, then import_run: what POST /api/v1/sources/{id}/import/
and `manage.py import_bids` call), into an empty source each run, on a real PostgreSQL with the
subscribers (alerts, analytics) taking the events as they do in production; `import_rows_per_s`
is the median of --runs runs, the check's pass included. Re-import: the same file again into
the last source (nothing changes: no revision, no event); its median rate. Peer: what a Django
user would write: the same rows typed the same way (crawls.imports.rows), then one
`Bid.objects.update_or_create` per row, on a --peer-rows slice (its rate; it grows linearly).
Ends by printing one JSON line of figures.

    make bench-imports                     # or: .venv/bin/python -m bench.imports --runs 3
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import bids_database, log

DATABASE = "forest_bench_imports"
TITLES = ("도로 포장 공사", "Supply of LED street lighting", "하수관로 정비공사", "청사 리모델링",
          "Office equipment", "교량 보수 설계 용역")  # fmt: skip
DEPARTMENTS = ("서울특별시 도시기반시설본부", "Busan Port Authority", "조달청 시설사업국",
               "경기도교육청 재무과", "Korea Rail Network Authority")  # fmt: skip
STATUSES = ("공고중", "active", "취소", "closed", "낙찰")
METHODS = ("open", "selective", "limited", "direct")


def csv_write(path: Path, rows: int, *, seed: int = 15) -> None:
    """`rows` bids with every bid field, in UTF-8 with a BOM (as spreadsheets save it)."""
    rng = random.Random(seed)  # noqa: S311 - made-up data, not secrets
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["url", "reference", "title", "department", "views", "post_date", "amount",
             "currency", "deadline", "status", "procurement_method", "classifications", "region"]
        )  # fmt: skip
        for n in range(1, rows + 1):
            writer.writerow(
                [
                    f"https://bids.example.org/notices/{n}?board=1",
                    f"2026-{n:07d}",
                    f"[{n}] {rng.choice(TITLES)} {rng.randint(1, 99)}차",
                    rng.choice(DEPARTMENTS),
                    rng.randint(0, 50_000),
                    f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    f"{rng.randint(1_000, 9_999_999) * 1000:,}",
                    rng.choice(("KRW", "원", "USD")),
                    f"2026-12-{rng.randint(1, 28):02d} {rng.randint(9, 18)}:00",
                    rng.choice(STATUSES),
                    rng.choice(METHODS),
                    f"CPV:{rng.randint(30_000_000, 45_999_999)}",
                    rng.choice(("서울", "부산", "제주", "")),
                ]
            )


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peer-rows", type=int, default=10_000)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with (
        tempfile.TemporaryDirectory() as folder,
        bids_database(
            DATABASE, rows=0, reuse=False, settings_module="project.settings",
            env={"IMPORT_MAX_ROWS": str(max(args.rows, 1_000_000))},
        ),
    ):  # fmt: skip
        logging.disable(logging.WARNING)
        path = Path(folder) / "bids.csv"
        csv_write(path, args.rows)
        log(f"{args.rows} rows, {path.stat().st_size / 1e6:.1f} MB")
        figures = _bench(args, path)
    print(json.dumps(figures))
    return 0


def _import(source, path: Path):
    from crawls.services import imports  # noqa: PLC0415 - after django.setup()

    started = time.perf_counter()
    with path.open("rb") as raw:
        job = imports.import_create(
            source=source, user=None, raw=raw, filename=path.name, size=path.stat().st_size,
            keep=False,
        )  # fmt: skip
        job = imports.import_run(job_id=job.pk, raw=raw)
    seconds = time.perf_counter() - started
    assert job is not None, "another process took the job"
    assert job.status == "succeeded", job.error
    return job, seconds


def _bench(args, path: Path) -> dict:
    from django.contrib.auth import get_user_model  # noqa: PLC0415 - after django.setup()

    from crawls import services  # noqa: PLC0415 - after django.setup()
    from crawls.models import BidRevision  # noqa: PLC0415 - after django.setup()

    user, _ = get_user_model().objects.get_or_create(username="bench")
    workspace = services.workspace_create(owner=user, name="bench imports")

    def source(name: str):
        return services.source_create(
            workspace=workspace, name=name, start_urls=["https://bids.example.org/notices"],
            rules={"items": ["a"], "fields": {"title": "h1"}, "timezone": "Asia/Seoul"},
        )  # fmt: skip

    rates, again = [], []
    for run in range(args.runs):
        job, seconds = _import(source(f"run {run + 1}"), path)
        assert (job.items_new, job.rows_failed) == (args.rows, 0), job.errors[:3]
        rates.append(args.rows / seconds)
        log(f"import {run + 1}: {seconds:.2f}s, {rates[-1]:,.0f} rows/s")
    last = job.source
    revisions = BidRevision.objects.count()
    for run in range(args.runs):
        job, seconds = _import(last, path)
        assert (job.items_new, job.items_changed) == (0, 0), job
        again.append(args.rows / seconds)
        log(f"re-import {run + 1}: {seconds:.2f}s, {again[-1]:,.0f} rows/s")
    assert BidRevision.objects.count() == revisions
    peer = _peer(source("peer"), path, args.peer_rows)
    log(f"peer: {peer:,.0f} rows/s on {args.peer_rows} rows")
    return {
        "rows": args.rows,
        "runs": args.runs,
        "import_rows_per_s": round(statistics.median(rates)),
        "import_rows_per_s_runs": [round(r) for r in rates],
        "reimport_rows_per_s": round(statistics.median(again)),
        "peer_update_or_create_rows_per_s": round(peer),
        "peer_rows": args.peer_rows,
        "ratio": round(statistics.median(rates) / peer, 1),
    }


def _peer(source, path: Path, rows: int) -> float:
    """update_or_create per row, the rows typed by the import's own rules; rows per second."""
    from django.db import transaction  # noqa: PLC0415 - after django.setup()
    from django.utils import timezone  # noqa: PLC0415 - after django.setup()

    from crawls.engine import store  # noqa: PLC0415 - after django.setup()
    from crawls.imports import rows as import_rows  # noqa: PLC0415 - after django.setup()
    from crawls.models import Bid  # noqa: PLC0415 - after django.setup()
    from crawls.services import imports  # noqa: PLC0415 - after django.setup()

    zone = imports._zone(source)
    started = time.perf_counter()
    with path.open(encoding="utf-8-sig", newline="") as lines, transaction.atomic():
        for n, row in enumerate(csv.DictReader(lines)):
            if n == rows:
                break
            item = import_rows.row_item(row, base_url="https://bids.example.org/", tz=zone)
            columns, extra = store._columns(item.fields)
            now = timezone.now()
            Bid.objects.update_or_create(
                source=source,
                url_hash=item.url_hash,
                defaults={**columns, "extra": extra, "url": item.url,
                          "content_hash": item.content_hash, "last_seen_at": now,
                          "changed_at": now},
                create_defaults={**columns, "extra": extra, "url": item.url,
                                 "workspace_id": source.workspace_id,
                                 "content_hash": item.content_hash, "first_seen_at": now,
                                 "last_seen_at": now, "changed_at": now},
            )  # fmt: skip
    return rows / (time.perf_counter() - started)


if __name__ == "__main__":
    raise SystemExit(main())
