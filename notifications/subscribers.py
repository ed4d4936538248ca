"""The crawl event subscriber (settings.CRAWL_EVENT_SUBSCRIBERS): crawls never import us."""

from __future__ import annotations

from crawls import events
from crawls.models import CrawlEvent
from notifications import services


def crawl_event(event: CrawlEvent) -> None:
    """Called after commit with each crawl event: match batches (and, at the end, any batch
    whose call was lost), tell of outcomes."""
    if event.type == events.ITEMS:
        services.alert_match_batch(
            crawl_id=event.crawl_id,
            workspace_id=event.workspace_id,
            new=list(event.payload.get("new", [])),
            changed=list(event.payload.get("changed", [])),
            removed=list(event.payload.get("removed", [])),
        )
    elif event.type in events.FINAL_TYPES:
        services.alert_match_crawl(crawl_id=event.crawl_id, workspace_id=event.workspace_id)
        if event.type != events.CANCELLED:
            services.crawl_outcome_notify(
                crawl_id=event.crawl_id,
                succeeded=event.type == events.SUCCEEDED,
                degraded=event.type == events.DEGRADED,
            )
