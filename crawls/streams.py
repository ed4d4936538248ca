"""What the live streams (WebSocket consumers and the SSE view) share: who the caller is, reads
of the CrawlEvent log and of a workspace's crawls, and the cursor that sends each sequence once.

Reads are sync: the streams call them through database_sync_to_async.
"""

from __future__ import annotations

from django.db.models import Max

from crawls import selectors, services
from crawls.engine import progress
from crawls.events import FINAL_TYPES, event_message
from crawls.models import ApiToken, Crawl, CrawlEvent
from project import dbscope

LOG_PAGE = 500
SNAPSHOT_FINISHED = 20
SNAPSHOT_FIELDS = (
    "status", "pages_done", "pages_failed", "pages_total", "items_new", "items_changed",
    "items_unchanged", "errors", "event_seq",
)  # fmt: skip


class Caller:
    """Who opened a stream: a user, and the token's workspace when a token was used."""

    def __init__(self, user, token: ApiToken | None = None):
        self.user = user
        self.token = token
        # The database scope the stream reads in: the token's workspace, else the user's
        # (the scope the request or connection took, project/dbscope.py).
        self.db_scope: dbscope.Scope = (
            dbscope.encode([token.workspace_id]) if token is not None else dbscope.current()
        )

    def crawls(self):
        return Crawl.objects.filter(workspace_id__in=self._workspace_ids())

    def workspace_ids(self) -> list[int]:
        return list(self._workspace_ids())

    def _workspace_ids(self):
        return selectors.workspace_ids_for(user=self.user, token=self.token)


def caller_from(user, raw_token: str | None) -> Caller | None:
    """The caller of a stream: a valid bearer token wins; else an active session user."""
    if raw_token:
        with dbscope.system_scope():  # the token decides the scope (as crawls.api.auth does)
            token = services.token_authenticate(raw=raw_token)
        return None if token is None else Caller(token.user, token)
    if user is not None and user.is_authenticated and user.is_active:
        return Caller(user)
    return None


def crawl_workspace_for(caller: Caller, crawl_id: int) -> int | None:
    """The crawl's workspace if the caller may see the crawl; None otherwise."""
    return caller.crawls().filter(pk=crawl_id).values_list("workspace_id", flat=True).first()


def log_after(crawl_id: int, after: int, limit: int = LOG_PAGE) -> list[dict]:
    """Up to `limit` events of a crawl with a sequence greater than `after`, as wire messages."""
    events = CrawlEvent.objects.filter(crawl_id=crawl_id, sequence__gt=after).order_by("sequence")
    return [event_message(event) for event in events[:limit]]


def log_heads(crawl_ids: list[int]) -> dict[int, int]:
    """The highest logged sequence of each crawl (those with events); one query for them all."""
    rows = (
        CrawlEvent.objects.filter(crawl_id__in=crawl_ids)
        .order_by()
        .values("crawl_id")
        .annotate(head=Max("sequence"))
    )
    return {row["crawl_id"]: row["head"] for row in rows}


def ended_by(crawl_id: int, after: int) -> bool:
    """Whether the crawl's final event is at or before sequence `after` (the client has it)."""
    return CrawlEvent.objects.filter(
        crawl_id=crawl_id, sequence__lte=after, type__in=FINAL_TYPES
    ).exists()


def workspace_snapshot(workspace_ids: list[int]) -> dict:
    """The open crawls of the workspaces and their most recent finished ones."""
    crawls = Crawl.objects.filter(workspace_id__in=workspace_ids).select_related("source")
    rows = [*crawls.filter(status__in=Crawl.ACTIVE).order_by("-id")]
    rows += crawls.filter(status__in=Crawl.FINISHED).order_by("-id")[:SNAPSHOT_FINISHED]
    return {"type": "workspace.snapshot", "crawls": [_snapshot_row(crawl) for crawl in rows]}


def _snapshot_row(crawl: Crawl) -> dict:
    return {
        "id": crawl.id,
        "workspace": crawl.workspace_id,
        "source": crawl.source_id,
        "source_name": crawl.source.name,
        **{field: getattr(crawl, field) for field in SNAPSHOT_FIELDS},
        **progress.crawl_progress(crawl),  # as a crawl.progress payload carries them
    }


class Cursor:
    """The last sequence sent, and what to do with a live message: send, skip, or fill a gap."""

    SEND, SKIP, GAP = "send", "skip", "gap"

    def __init__(self, after: int = 0):
        self.last = after
        self.finished = False

    def judge(self, message: dict) -> str:
        seq = message["seq"]
        if self.finished or seq <= self.last:
            return self.SKIP
        return self.SEND if seq == self.last + 1 else self.GAP

    def sent(self, message: dict) -> None:
        self.last = message["seq"]
        self.finished = self.finished or message["event"] in FINAL_TYPES


def non_negative_int(raw) -> int | None:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None
