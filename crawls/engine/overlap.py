"""The event loop of a crawl run, in a thread of its own: the network and the extraction of one
batch go on there while the run's thread stores the batch before it (engine/run.py).

Only the run's thread touches the database for its batches (claims, commits); the loop thread
fetches and hands pages to the sandbox, and reads the cancel flag through its own short-lived
connections (engine/cancel.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from django.db import connections

T = TypeVar("T")

STOP_TIMEOUT = 30.0  # seconds to wait for the loop's last tasks when the run ends


class LoopThread:
    """An asyncio loop running in a daemon thread until close()."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        context = contextvars.copy_context()  # the crawl id of the log lines, among others
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name=name, daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            connections.close_all()  # whatever this thread opened goes back

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run `coro` on the loop; its result (or error) comes back through the future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and wait for it."""
        return self.submit(coro).result()

    def close(self, last: Coroutine[Any, Any, Any] | None = None) -> None:
        """Cancel what still runs on the loop (a batch in flight when the run ends), wait for
        it, run `last` (closing what lives on the loop), then stop the loop and its thread."""
        if not self._thread.is_alive():
            if last is not None:
                last.close()
            return
        try:
            self.submit(_cancel_others()).result(STOP_TIMEOUT)
            if last is not None:
                self.submit(last).result(STOP_TIMEOUT)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(STOP_TIMEOUT)
            if not self._thread.is_alive():
                self.loop.close()


async def _cancel_others() -> None:
    current = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not current]
    for task in others:
        task.cancel()
    if others:
        await asyncio.gather(*others, return_exceptions=True)
