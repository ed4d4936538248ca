"""A worker-like process that appends events to crawls' logs, as a Celery worker does.

With --final the last event of each crawl is crawl.succeeded. With --times, writes one line
"crawl seq epoch" per event, the clock read at its commit (an on_commit hook registered before
event_append's, so before the publish and the subscribers' delivery that follow the commit).
Reads DATABASE_URL / REDIS_URL like daphne does.

    python -m bench.stream_writer --crawl 7 --crawl 8 --count 100 --rate 20 --final
"""

from __future__ import annotations

import argparse
import os
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crawl", type=int, action="append", required=True)
    parser.add_argument("--count", type=int, required=True, help="events per crawl")
    parser.add_argument("--rate", type=float, default=20.0, help="events/s per crawl")
    parser.add_argument("--final", action="store_true", help="end each crawl with a final event")
    parser.add_argument("--times", help="write 'crawl seq commit-epoch' lines here")
    parser.add_argument("--settings", default="project.settings")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", args.settings)
    import django  # noqa: PLC0415 - settings first

    django.setup()
    from project import dbscope  # noqa: PLC0415 - after django.setup()

    dbscope.set_scope(dbscope.SYSTEM)  # a script outside manage.py: maintenance (docs/tenancy.md)
    from django.db import transaction  # noqa: PLC0415

    from crawls import events, realtime  # noqa: PLC0415
    from crawls.models import Crawl  # noqa: PLC0415

    workspaces = dict(Crawl.objects.filter(pk__in=args.crawl).values_list("id", "workspace_id"))
    committed = []
    started = time.monotonic()
    for i in range(args.count):
        for crawl_id in args.crawl:
            final = args.final and i == args.count - 1
            stamp: list[float] = []
            with transaction.atomic():
                transaction.on_commit(lambda stamp=stamp: stamp.append(time.time()))
                event = events.event_append(
                    crawl_id=crawl_id,
                    workspace_id=workspaces[crawl_id],
                    type=events.SUCCEEDED if final else events.PROGRESS,
                    payload={"n": i},
                )
            committed.append(f"{crawl_id} {event.sequence} {stamp[0]:.6f}\n")
        pause = started + (i + 1) / args.rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    realtime.flush(30)
    if args.times:
        with open(args.times, "w") as out:
            out.writelines(committed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
