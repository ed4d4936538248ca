"""A crawl's state rebuilt from its event log alone, and compared with its row field by field
(`manage.py crawl_rebuild`). The log is the record; the row is what the engine keeps of it.

The fold starts from a new row and applies each event in sequence order: the lifecycle events
set status, attempt, revivals, cancel_requested, error and the times; `crawl.items` events add
up to items_new and items_changed; the final event (or the cancel of a queued crawl) carries the
row's last figures: pages, errors by class, items_unchanged, capped, quality. What the log
cannot give is named with the reason (docs/architecture.md, "Events and subscribers").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from crawls import events
from crawls.models import Crawl, CrawlEvent

# The fields a fold can give, in the order they are reported.
LIFECYCLE = ("status", "attempt", "revivals", "cancel_requested", "error")
TIMES = ("started_at", "deadline_at", "finished_at")
ITEM_SUMS = ("items_new", "items_changed")
FIGURES = ("pages_done", "pages_failed", "pages_total", "items_unchanged", "errors", "capped")
FIELDS = (*LIFECYCLE, *TIMES, *ITEM_SUMS, *FIGURES, "quality", "event_seq")

# Row fields no event carries, by design.
NEVER = {
    "heartbeat_at": "the sweep's liveness clock: every batch and idle poll moves it, no event",
    "created_at": "set when the row is inserted, before its queued event is written",
}
ACTIVE = (
    "the crawl is active: its figures reach the log only as throttled progress snapshots "
    "(CRAWL_PROGRESS_INTERVAL) and in its final event, not per batch; rebuild it once finished"
)
_STATUS = {
    events.SUCCEEDED: Crawl.Status.SUCCEEDED,
    events.FAILED: Crawl.Status.FAILED,
    events.CANCELLED: Crawl.Status.CANCELLED,
    events.DEGRADED: Crawl.Status.DEGRADED,
}


@dataclass
class Rebuilt:
    """What a fold of a log gives: the values it derived, and why the others are not."""

    values: dict[str, Any] = field(default_factory=dict)
    not_derivable: dict[str, str] = field(default_factory=dict)
    events: int = 0
    # Events after the final one: the log should end there. A batch in flight when another run
    # ended the crawl (cancel, time limit, the sweep's give-up) can still commit after it.
    after_final: list[str] = field(default_factory=list)

    def take(
        self,
        name: str,
        event: CrawlEvent,
        key: str | None = None,
        parse: Callable[[Any], Any] | None = None,
    ) -> None:
        """Set `name` from the event's payload[key]; an older event without it: not derivable."""
        payload = event.payload or {}
        key = key or name
        if key in payload:
            value = payload[key]
            self.values[name] = parse(value) if parse and value is not None else value
            self.not_derivable.pop(name, None)
        else:
            self.values.pop(name, None)
            self.not_derivable[name] = (
                f"{event.type} #{event.sequence} predates {key!r} in its payload"
            )


def crawl_state_fold(log: Iterable[CrawlEvent]) -> Rebuilt:
    """The state of a crawl from its events alone (in sequence order); pure: no queries."""
    state = Rebuilt(values=_new_row())
    started = final = False
    figures: CrawlEvent | None = None  # the event that carries the last figures
    for event in log:
        state.events += 1
        kind, payload = event.type, event.payload or {}
        if final:
            state.after_final.append(f"#{event.sequence} {kind}")
        if kind == events.QUEUED:
            figures = event
        elif kind == events.STARTED:
            started = True
            state.values["status"] = Crawl.Status.RUNNING
            state.take("attempt", event)
            state.take("started_at", event, parse=_when)
            state.take("deadline_at", event, parse=_when)
        elif kind == events.RETRYING:
            state.values["status"] = Crawl.Status.QUEUED
            state.take("attempt", event)
            state.take("error", event)
        elif kind == events.RESUMED:
            state.take("revivals", event, key="revival")
        elif kind == events.CANCEL_REQUESTED:
            state.values["cancel_requested"] = True
        elif kind == events.ITEMS:
            state.values["items_new"] += len(payload.get("new", ()))
            state.values["items_changed"] += len(payload.get("changed", ()))
        elif kind in events.FINAL_TYPES:
            final, figures = True, event
            state.values["status"] = _STATUS[kind]
            if kind == events.CANCELLED:  # requested, or cancelled while queued (no request)
                state.values["cancel_requested"] = True
            if "error" in payload:  # a crawl cancelled while queued keeps its error
                state.take("error", event)
            state.take("finished_at", event, parse=_when)
    state.values["event_seq"] = state.events  # gapless: a lost event shows here
    _figures(state, figures, started=started, final=final)
    return state


def _figures(state: Rebuilt, figures: CrawlEvent | None, *, started: bool, final: bool) -> None:
    if figures is not None and final:
        for name in (*FIGURES, "quality"):
            state.take(name, figures)
    elif figures is not None and not started:  # queued and never run: the figures of a new row
        state.values.update(pages_done=0, pages_failed=0, items_unchanged=0, errors={})
        state.values.update(capped=False, quality={})
        state.take("pages_total", figures)
    else:
        reason = ACTIVE if figures is not None else "no queued event in the log"
        for name in (*FIGURES, "quality"):
            state.values.pop(name, None)
            state.not_derivable[name] = reason


def _new_row() -> dict[str, Any]:
    return {
        "status": Crawl.Status.QUEUED,
        "attempt": 1,
        "revivals": 0,
        "cancel_requested": False,
        "error": "",
        "started_at": None,
        "deadline_at": None,
        "finished_at": None,
        "items_new": 0,
        "items_changed": 0,
    }


def _when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


@dataclass
class Comparison:
    crawl_id: int
    events: int
    compared: list[str]
    differences: dict[str, tuple[Any, Any]]  # field: (the row's value, the log's)
    not_derivable: dict[str, str]
    after_final: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.differences

    def as_json(self) -> dict[str, Any]:
        return {
            "crawl": self.crawl_id,
            "equal": self.equal,
            "events": self.events,
            "compared": self.compared,
            "differences": {
                name: {"row": row, "log": log} for name, (row, log) in self.differences.items()
            },
            "not_derivable": self.not_derivable,
            "after_final": self.after_final,
        }


def crawl_rebuild(*, crawl_id: int) -> Comparison:
    """Fold the crawl's log and compare it with its row, both read in one snapshot.
    Raises Crawl.DoesNotExist."""
    outer = connection.in_atomic_block
    with transaction.atomic():
        if not outer:  # the row and the log as of one moment (a caller's transaction: its own)
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        crawl = Crawl.objects.get(pk=crawl_id)
        log = CrawlEvent.objects.filter(crawl_id=crawl_id).order_by("sequence")
        rebuilt = crawl_state_fold(log.iterator(chunk_size=500))
    compared = [name for name in FIELDS if name in rebuilt.values]
    differences = {
        name: (getattr(crawl, name), rebuilt.values[name])
        for name in compared
        if getattr(crawl, name) != rebuilt.values[name]
    }
    return Comparison(
        crawl_id=crawl_id,
        events=rebuilt.events,
        compared=compared,
        differences=differences,
        not_derivable={**rebuilt.not_derivable, **NEVER},
        after_final=rebuilt.after_final,
    )
