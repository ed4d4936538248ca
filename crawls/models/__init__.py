"""Crawls models. Tenancy first: every domain row belongs to a Workspace, and every read of such
rows goes through WorkspaceScopedQuerySet (`visible_to(user)` / `in_workspace(workspace)`).

One module per seam (workspaces, sources, bids, events, tokens, imports), imported here in the
order the models were declared; `from crawls.models import X` is the way to name any of them.
"""

# In declaration order (the app registry's order of models), not sorted.
# isort: off
from crawls.models.workspaces import Membership, Workspace, WorkspaceOwned, WorkspaceScopedQuerySet
from crawls.models.sources import Crawl, FrontierUrl, Source
from crawls.models.bids import Bid, BidRevision
from crawls.models.events import CrawlEvent, SubscriberCursor
from crawls.models.tokens import ApiToken
from crawls.models.imports import ImportJob

# isort: on

__all__ = [
    "ApiToken",
    "Bid",
    "BidRevision",
    "Crawl",
    "CrawlEvent",
    "FrontierUrl",
    "ImportJob",
    "Membership",
    "Source",
    "SubscriberCursor",
    "Workspace",
    "WorkspaceOwned",
    "WorkspaceScopedQuerySet",
]
