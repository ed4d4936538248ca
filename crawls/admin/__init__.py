"""The Django admin, an operator's tool (docs/admin.md): registering the models is importing
these modules."""

from crawls.admin import bids, crawling, tenancy

__all__ = ["bids", "crawling", "tenancy"]
