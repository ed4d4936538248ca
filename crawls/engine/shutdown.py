"""Whether the worker process running this crawl is stopping, so that the crawl hands itself back.

A Celery worker learns of SIGTERM in its main process; the crawl runs in a prefork child. `arm()`
maps one shared byte in the main process before the pool forks (the children inherit the same
page) and `request()` sets it there, for every child at once. A child that gets SIGTERM itself
(honcho and systemd signal the whole process group) notes it while inside
`sigterm_requests_here()`. `requested()` reads both; outside a worker it stays False.
"""

from __future__ import annotations

import contextlib
import mmap
import signal

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


def requested() -> bool:
    return _here or (_shared is not None and _shared[0] == 1)


@contextlib.contextmanager
def sigterm_requests_here():
    """While the block runs (in the main thread), the first SIGTERM of this process makes
    `requested()` true instead of ending the process; a second one does what the first would."""
    global _here
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None:  # installed outside Python
        previous = signal.SIG_DFL

    def on_sigterm(_signum, _frame) -> None:
        global _here
        _here = True
        signal.signal(signal.SIGTERM, previous)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _here = False
