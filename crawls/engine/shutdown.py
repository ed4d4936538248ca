"""Whether the worker process running this crawl is stopping, so that the crawl hands itself back.

A Celery worker learns of SIGTERM in its main process; the crawl runs in a prefork child. `arm()`
maps one shared byte in the main process before the pool forks (the children inherit the same
page) and `request()` sets it there, for every child at once. A child that gets SIGTERM itself
(honcho and systemd signal the whole process group) calls `request_here()`: that process only.
`requested()` reads both. Outside a worker (web, tests, eager tasks) it stays False.
"""

from __future__ import annotations

import mmap

_shared: mmap.mmap | None = None
_here = False


def arm() -> None:
    """Map the shared flag (cleared). Call in the worker's main process, before the pool forks."""
    global _shared
    _shared = mmap.mmap(-1, 1)  # anonymous and MAP_SHARED: forked children see our writes


def request() -> None:
    """The worker is stopping: every crawl running under it hands its crawl back."""
    if _shared is not None:
        _shared[0] = 1


def request_here() -> None:
    """This process is stopping: the crawl it runs hands its crawl back."""
    global _here
    _here = True


def requested() -> bool:
    return _here or (_shared is not None and _shared[0] == 1)
