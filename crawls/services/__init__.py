"""Writes: one transaction each, side effects (Celery tasks, published events) on commit.

One module per seam: tenancy (workspaces, members, API tokens), sources (validation, schedules,
the demo source), previews (rules tried on one URL), crawls (start, cancel, retry, scheduled,
sweep), rebuild (a crawl's state folded from its event log and compared with its row: a read).
Callers use this package (`from crawls import services; services.crawl_start(...)`), not its
modules.
"""

from crawls.services.crawls import (
    Backpressure,
    CrawlConflict,
    _enqueue,
    celery_app,
    crawl_cancel,
    crawl_retry,
    crawl_scheduled,
    crawl_start,
    crawl_sweep,
)
from crawls.services.previews import PreviewBusy, source_preview
from crawls.services.rebuild import crawl_rebuild, crawl_state_fold
from crawls.services.sources import (
    SOURCE_FIELDS,
    demo_source_ensure,
    source_clean,
    source_create,
    source_delete,
    source_update,
)
from crawls.services.tenancy import (
    MEMBER_ALREADY,
    ROLE_LAST_OWNER,
    ROLE_MANAGERS_ONLY,
    ROLE_OWNERS_ONLY,
    TOKEN_PREFIX,
    RoleRefused,
    membership_add,
    membership_check,
    membership_remove,
    membership_role_change,
    token_authenticate,
    token_create,
    token_hash,
    token_revoke,
    workspace_create,
    workspace_delete,
    workspace_rename,
)

__all__ = [
    "MEMBER_ALREADY",
    "ROLE_LAST_OWNER",
    "ROLE_MANAGERS_ONLY",
    "ROLE_OWNERS_ONLY",
    "SOURCE_FIELDS",
    "TOKEN_PREFIX",
    "Backpressure",
    "CrawlConflict",
    "PreviewBusy",
    "RoleRefused",
    "_enqueue",
    "celery_app",
    "crawl_cancel",
    "crawl_rebuild",
    "crawl_retry",
    "crawl_scheduled",
    "crawl_start",
    "crawl_state_fold",
    "crawl_sweep",
    "demo_source_ensure",
    "membership_add",
    "membership_check",
    "membership_remove",
    "membership_role_change",
    "source_clean",
    "source_create",
    "source_delete",
    "source_preview",
    "source_update",
    "token_authenticate",
    "token_create",
    "token_hash",
    "token_revoke",
    "workspace_create",
    "workspace_delete",
    "workspace_rename",
]
