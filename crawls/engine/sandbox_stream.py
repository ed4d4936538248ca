"""A sandbox fed a stream of pages from an event loop: pages are written to the child's pipe as
their fetches complete and its answers are read when they arrive (the loop watches the pipe), so
the child reads pages while the loop fetches and the run stores: two processes at work instead
of one waiting on the other, and no round trip per page.

The child reads the pages in the order sent (crawls.engine.sandbox's child, unchanged); the page
at the head of the queue is the one it is reading. Each page keeps its own budget: when the head
has been read for longer than budget + kill_after, the child is killed, the head page gets a
Page with `timeout` set to the step the child last announced, and the pages behind it are sent
again to a fresh child. A child that dies names its head page (SandboxError) the same way.
A fresh child's start-up (an interpreter, about 0.1 s, more on a busy machine) is not counted
against its first page: pages are timed from its "ready". At most DEPTH pages wait in the pipe
(a write never waits long on a busy child).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

from crawls.engine import extract
from crawls.engine.request import Request
from crawls.engine.sandbox import STARTUP_LIMIT, Rules, Sandbox, SandboxError

DEPTH = 4  # pages sent and not answered, at most


@dataclass(slots=True)
class _Job:
    message: tuple[object, ...]
    future: asyncio.Future[extract.Page]


class StreamSandbox:
    """One child reading the pages of one run, on the run's event loop."""

    def __init__(self, rules: Rules, *, budget: float, kill_after: float) -> None:
        self.rules = rules
        self.budget = budget
        self.kill_after = kill_after
        self._sandbox = Sandbox()
        self._queue: collections.deque[_Job] = collections.deque()
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._ready = False  # the child answered "hello"

    async def extract(
        self,
        html: bytes | str,
        *,
        url: str,
        want_links: bool,
        want_fields: bool,
        request: Request | None,
        status: int,
        link_next: str | None,
    ) -> extract.Page:
        """kinds.read() of one page in the child, as Sandbox.extract() does it."""
        loop = asyncio.get_running_loop()
        if self._slots is None:
            self._slots, self._loop = asyncio.Semaphore(DEPTH), loop
        async with self._slots:
            message = (
                "page", html, url, want_links, want_fields, self.budget, self.kill_after,
                request, status, link_next,
            )  # fmt: skip
            job = _Job(message, loop.create_future())
            self._queue.append(job)
            try:
                self._send(job)
            except (EOFError, OSError):
                self._died()
            if len(self._queue) == 1:
                self._arm()
            page: extract.Page = await job.future
            return page

    def close(self) -> None:
        self._unwatch()
        self._sandbox.close()
        for job in self._queue:
            if not job.future.done():
                job.future.cancel()
        self._queue.clear()

    # --- the pipe ---------------------------------------------------------------------------

    def _send(self, job: _Job) -> None:
        if self._fd is None:
            conn = self._sandbox._start()
            conn.send(("rules", self.rules))
            conn.send(("hello",))
            self._ready = False
            self._fd = conn.fileno()
            assert self._loop is not None  # noqa: S101 - set before the first send
            self._loop.add_reader(self._fd, self._readable)
        sending = self._sandbox._conn
        assert sending is not None  # noqa: S101
        sending.send(job.message)

    def _readable(self) -> None:
        conn = self._sandbox._conn
        try:
            while conn is not None and self._queue and conn.poll(0):
                kind, value = conn.recv()
                if kind == "ready":  # started: its first page is timed from now
                    self._ready = True
                    self._arm()
                    continue
                job = self._queue.popleft()
                if not job.future.done():
                    if kind == "page":
                        job.future.set_result(value)
                    else:
                        job.future.set_exception(SandboxError(value))
                self._arm()
        except (EOFError, OSError):
            self._died()

    def _arm(self) -> None:
        """Time the head page from now (it is the one the child reads next)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._queue and self._loop is not None:
            head = self._queue[0]
            limit = self.budget + self.kill_after if self._ready else STARTUP_LIMIT
            self._timer = self._loop.call_later(limit, self._overrun, head, time.monotonic())

    def _overrun(self, head: _Job, _since: float) -> None:
        if not self._queue or self._queue[0] is not head:
            return
        self._restart(lambda job, step: job.future.set_result(extract.Page(timeout=step)))

    def _died(self) -> None:
        def fail(job: _Job, step: str) -> None:
            job.future.set_exception(
                SandboxError(f"the extraction process died while reading {step}")
            )

        self._restart(fail)

    def _restart(self, settle: Callable[[_Job, str], None]) -> None:
        """Kill the child; settle the head page with the step it was in; send the others to a
        fresh child."""
        board = self._sandbox._board
        step = board.read() if board is not None else extract.PARSE_STEP
        self._unwatch()
        self._sandbox.close()
        if not self._queue:
            return
        head = self._queue.popleft()
        if not head.future.done():
            settle(head, step)
        for job in list(self._queue):
            try:
                self._send(job)
            except (EOFError, OSError):
                for left in self._queue:
                    if not left.future.done():
                        left.future.set_exception(SandboxError("the extraction process died"))
                self._queue.clear()
                self._unwatch()
                self._sandbox.close()
                return
        self._arm()

    def _unwatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._fd is not None and self._loop is not None:
            self._loop.remove_reader(self._fd)
        self._fd = None
