"""The crawl-event subscription point of analytics (settings.CRAWL_EVENT_SUBSCRIBERS).

crawl.items: recompute the batch's keys of the read model, except an import's (its payload names
the import): those are counted once, by the import's final event. A final event (succeeded, failed,
cancelled, degraded): recompute every key the crawl touched (bids stored with no event of
their own). Either bumps the workspace's cache generation. Events come at least once and in
order (crawls/subscribers.py): every write recomputes whole keys, so a second delivery changes
nothing, and a failure must raise (Redis refusing the cache bump raises from the cache) so that
the event stays behind this subscriber's position and is taken again. What no event repairs,
`manage.py analytics_rebuild` does.
"""

from __future__ import annotations

from analytics import cache, services
from crawls import events
from crawls.models import CrawlEvent


def crawl_event(event: CrawlEvent) -> None:
    """Keep the read model and the cached answers of the event's workspace current."""
    if event.type == events.ITEMS:
        payload = event.payload or {}
        if payload.get("import"):
            return  # an import's batches: its final event recomputes their keys at once
        services.summary_apply_items(
            workspace_id=event.workspace_id,
            crawl_id=event.crawl_id,
            new=payload.get("new") or [],
            changed=payload.get("changed") or [],
        )
    elif event.type in events.FINAL_TYPES:
        services.summary_reconcile_crawl(workspace_id=event.workspace_id, crawl_id=event.crawl_id)
    elif event.type == events.STARTED:
        cache.generation_bump(workspace_id=event.workspace_id)  # crawl health counts it
