"""Which bids a source still shows (docs/crawling.md, "Removed notices"): after a complete crawl
(succeeded, not capped, not degraded) a bid not seen for settings.BID_REMOVED_AFTER_CRAWLS
complete crawls in a row is marked removed, with a revision; a removed bid seen again is live
again (crawls.engine.store), with a revision.

Seam (issue 13): `crawl_removals` is called by lifecycle.crawl_finish, inside its transaction,
for a complete crawl, before its final event.
"""

from __future__ import annotations

from crawls.models import Crawl


def crawl_removals(crawl: Crawl) -> list[int]:
    """Count a miss for every live bid of the crawl's source it did not see; mark removed those
    missed often enough (revision, crawl.items event); the ids marked removed."""
    return []
