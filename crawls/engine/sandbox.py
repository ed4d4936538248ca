"""Read pages (kinds.read: extract() for HTML, the API and OCDS readers) in a child process
that is killed when it overruns.

Users' rules are bounded (sizes, RE2 regexes), but lexbor's CSS matching backtracks on
descendant combinators: `p div div div span` on a page nested a thousand deep runs for minutes
inside one C call, holding the GIL, where no cooperative check can stop it. So pages are read
in a child process: extract() checks its budget between steps and names the step that ran out;
if one step overruns the budget by `kill_after`, the parent kills the child (and names the step
the child last announced) and starts a fresh one for the next page.

A child is a fresh interpreter (``python -m crawls.engine.sandbox``: the web and worker processes
are multi-threaded, forking them is unsafe) talking pickles over its stdin/stdout; it trusts
nothing but its parent. A ``Sandbox`` keeps its child between pages, so the start-up cost
(about 0.1 s) is paid once and again only after a kill; ``Pool`` lends a bounded number of them
to concurrent previews. Pure Python (no Django).
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from crawls.engine import extract, kinds
from crawls.engine.request import Request

Rules = kinds.AnyRules

_ROOT = Path(__file__).resolve().parents[2]  # where `crawls` is importable from
# A child whose parent died mid-page still ends: the kernel delivers SIGALRM (default action:
# terminate, even inside C code) this long past the kill deadline.
_ORPHAN_MARGIN = 5.0
# A fresh child has this long to start (its imports) before it counts as dead.
STARTUP_LIMIT = 30.0


class SandboxError(Exception):
    """The child process died or failed in a way that is not the page's fault."""


class Busy(Exception):
    """Every sandbox of the pool is in use."""


class Sandbox:
    """One child process reading pages for its owner (one thread at a time)."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._conn: _Duplex | None = None
        self._rules: Rules | None = None
        self._board: _StepBoard | None = None
        self._ready = False  # the child answered "hello"

    def extract(
        self,
        html: bytes | str,
        *,
        url: str,
        rules: Rules,
        budget: float,
        kill_after: float,
        want_links: bool = True,
        want_fields: bool = True,
        request: Request | None = None,
        status: int = 200,
        link_next: str | None = None,
    ) -> extract.Page:
        """kinds.read() in the child under `budget`; killed `kill_after` seconds later if still
        busy. Past the budget, the Page has only `timeout` set: the step that was running.
        `request`, `status` and `link_next` are as kinds.read() takes them."""
        conn = self._start()
        board = self._board
        try:
            if not self._ready:
                # Its start-up (an interpreter, about 0.1 s; more on a busy machine) is not
                # counted against the page's budget.
                conn.send(("hello",))
                if not conn.poll(STARTUP_LIMIT):
                    raise OSError("the extraction process did not start")
                conn.recv()
                self._ready = True
            if rules is not self._rules:
                conn.send(("rules", rules))
                self._rules = rules
            conn.send(
                (
                    "page", html, url, want_links, want_fields, budget, kill_after,
                    request, status, link_next,
                )
            )  # fmt: skip
            if not conn.poll(budget + kill_after):
                step = board.read()
                self.close()
                return extract.Page(timeout=step)
            kind, value = conn.recv()
        except (EOFError, OSError) as exc:
            step = board.read()
            self.close()
            raise SandboxError(f"the extraction process died while reading {step}") from exc
        if kind == "page":
            return value
        raise SandboxError(value)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def close(self) -> None:
        """End the child (killing it if it is busy); the next extract() starts a new one."""
        process, conn, board = self._process, self._conn, self._board
        self._process = self._conn = self._rules = self._board = None
        self._ready = False
        if conn is not None:
            conn.close()
        if board is not None:
            board.close()
        if process is not None:
            process.kill()
            process.wait(5)
            for stream in (process.stdin, process.stdout):
                stream.close()

    def _start(self) -> _Duplex:
        if self._conn is not None and self.alive:
            return self._conn
        self.close()
        self._board = _StepBoard()
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", __name__, self._board.path],
            cwd=_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        # One duplex Connection over the child's stdin (we write) and stdout (we read).
        self._process = process
        self._conn = _Duplex(process.stdout.fileno(), process.stdin.fileno())
        return self._conn


class Pool:
    """At most `size` sandboxes in use at once; idle ones are kept for the next caller."""

    def __init__(self, size: int) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Sandbox] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def sandbox(self) -> Iterator[Sandbox]:
        """A sandbox of one's own for the block; Busy when all `size` are in use."""
        if not self._slots.acquire(blocking=False):
            raise Busy
        try:
            with self._lock:
                sandbox = self._idle.pop() if self._idle else Sandbox()
            try:
                yield sandbox
            finally:
                with self._lock:
                    self._idle.append(sandbox)  # a killed one restarts on its next use
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for sandbox in idle:
            sandbox.close()


class _StepBoard:
    """Where the child writes the name of the step it is in: shared memory (a small file
    mapped by both), read by the parent only when it kills the child, so that naming the step
    costs the child a memory write rather than a message per field."""

    SIZE = 512

    def __init__(self, path: str | None = None) -> None:
        if path is None:
            handle, path = tempfile.mkstemp(prefix="forest-sandbox-")
            os.ftruncate(handle, self.SIZE)
            os.close(handle)
            self.owner = True
        else:
            self.owner = False
        self.path = path
        with open(path, "r+b") as file:
            self._map = mmap.mmap(file.fileno(), self.SIZE)

    def write(self, step: str) -> None:
        data = step.encode()[: self.SIZE - 2]
        self._map[2 : 2 + len(data)] = data
        self._map[0:2] = len(data).to_bytes(2, "little")

    def read(self) -> str:
        size = int.from_bytes(self._map[0:2], "little")
        return self._map[2 : 2 + size].decode(errors="replace") or extract.PARSE_STEP

    def close(self) -> None:
        self._map.close()
        if self.owner:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


class _Duplex:
    """A Connection's send/recv/poll over two pipe ends (not owned: their files close them)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._reader = Connection(os.dup(read_fd), writable=False)
        self._writer = Connection(os.dup(write_fd), readable=False)

    def send(self, obj: object) -> None:
        self._writer.send(obj)

    def recv(self) -> Any:  # whatever the other side pickled
        return self._reader.recv()

    def poll(self, timeout: float) -> bool:
        return self._reader.poll(timeout)

    def fileno(self) -> int:
        """The end answers are read from (for an event loop's add_reader)."""
        return self._reader.fileno()

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


def main() -> None:
    """The child's entry point: messages on stdin, answers on stdout, anything printed to stderr."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which kills us
    # So is a SIGTERM to the worker's process group: the parent hands its crawl back with the
    # pages we are reading, then ends us (a parent that dies leaves us EOF on stdin).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    conn = _Duplex(sys.stdin.fileno(), sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print cannot corrupt the stream
    _serve(conn, _StepBoard(sys.argv[1]))


def _serve(conn: _Duplex, board: _StepBoard) -> None:
    """Read pages until the parent hangs up."""
    rules: Rules | None = None
    announce = board.write

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "rules":
            rules = message[1]
            continue
        if message[0] == "hello":  # a stream's parent times pages from our answer
            conn.send(("ready", None))
            continue
        _, html, url, want_links, want_fields, budget, kill_after, request, status, link_next = (
            message
        )
        signal.alarm(math.ceil(budget + kill_after + _ORPHAN_MARGIN))
        try:
            page = kinds.read(
                html,
                url=url,
                rules=rules,
                request=request or Request(url),
                status=status,
                link_next=link_next,
                want_links=want_links,
                want_fields=want_fields,
                deadline=time.monotonic() + budget,
                on_step=announce,
            )
        except Exception as exc:  # a bug, not the page: say so rather than die silently
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        else:
            if page.timeout is not None:
                page = extract.Page(timeout=page.timeout)  # nothing half-read leaves the child
            conn.send(("page", page))
        finally:
            signal.alarm(0)


if __name__ == "__main__":
    main()
