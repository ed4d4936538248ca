"""The crawl event subscriber (settings.CRAWL_EVENT_SUBSCRIBERS): crawls never import us."""

from __future__ import annotations

from crawls import events
from crawls.models import CrawlEvent
from notifications import services


def crawl_event(event: CrawlEvent) -> None:
    """Called with each crawl event, in order, at least once (crawls.subscribers keeps our
    position in each crawl's log): match batches, tell of outcomes. Both are idempotent."""
    if event.type == events.ITEMS:
        services.alert_match_batch(
            crawl_id=event.crawl_id,
            workspace_id=event.workspace_id,
            new=list(event.payload.get("new", [])),
            changed=list(event.payload.get("changed", [])),
            removed=list(event.payload.get("removed", [])),
        )
    elif event.type in events.FINAL_TYPES and event.type != events.CANCELLED:
        services.crawl_outcome_notify(
            crawl_id=event.crawl_id,
            succeeded=event.type == events.SUCCEEDED,
            degraded=event.type == events.DEGRADED,
        )
