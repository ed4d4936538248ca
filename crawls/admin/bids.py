"""Bids and their revisions: read-only, filtered and searched the ways the API's indexes serve."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet

from crawls import bid_search
from crawls.admin.base import (
    BigTableAdmin,
    ScopedRelatedFilter,
    WorkspaceScopedAdmin,
    change_link,
    changelist_link,
)
from crawls.models import Bid, BidRevision, Crawl


class CrawlIdFilter(admin.SimpleListFilter):
    """`?crawl=<id>`: the bids a crawl found, changed or last saw (see bid_crawl_condition)."""

    title = "crawl"
    parameter_name = "crawl"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, f"Crawl {value}")] if value and value.isdigit() else []

    def queryset(self, request: Any, queryset: QuerySet[Bid]) -> QuerySet[Bid]:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(bid_search.bid_crawl_condition(crawl_id=int(value)))


class CurrencyFilter(admin.SimpleListFilter):
    """`?currency=KRW`: a fixed list of common codes (plus the one asked for), not a DISTINCT
    over the whole table."""

    title = "currency"
    parameter_name = "currency"
    common = ("KRW", "USD", "EUR", "JPY", "CNY", "GBP")

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        value = (self.value() or "").upper()
        codes = [*self.common, *([value] if value and value not in self.common else [])]
        return [(code, code) for code in codes]

    def queryset(self, request: Any, queryset: QuerySet[Bid]) -> QuerySet[Bid]:
        value = (self.value() or "").upper()
        return queryset.filter(currency=value) if value else queryset


class PresenceFilter(admin.SimpleListFilter):
    """`?presence=live|removed`: bids the source still shows, or those marked removed."""

    title = "presence"
    parameter_name = "presence"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "Live"), ("removed", "Removed")]

    def queryset(self, request: Any, queryset: QuerySet[Bid]) -> QuerySet[Bid]:
        if self.value() in ("live", "removed"):
            return queryset.filter(removed_at__isnull=self.value() == "live")
        return queryset


@admin.register(Bid)
class BidAdmin(WorkspaceScopedAdmin, BigTableAdmin):
    list_display = [
        "title", "source", "department", "post_date", "amount", "deadline", "changed_at",
        "status", "currency",
    ]  # fmt: skip
    list_filter = [
        CrawlIdFilter,
        "status",
        CurrencyFilter,
        PresenceFilter,
        ("source", ScopedRelatedFilter),
        ("workspace", ScopedRelatedFilter),
        ("post_date", admin.DateFieldListFilter),
        ("changed_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["source"]
    search_fields = ["title"]
    search_help_text = (
        "Title contains (any case), or the reference exactly, or a classification code exactly "
        "(CPV:45000000)."
    )
    ordering = ["-id"]
    sortable_by = []
    exclude = ["url_hash", "version"]  # version: the publisher's, internal to the store
    readonly_fields = [
        "workspace", "source", "url", "title", "department", "views", "post_date", "amount",
        "currency", "deadline", "reference", "status", "procurement_method", "classifications",
        "extra", "content_hash", "etag", "last_modified",
        "first_seen_at", "last_seen_at", "changed_at", "first_crawl", "last_crawl",
        "missed_crawls", "removed_at", "revisions_link",
    ]  # fmt: skip

    @admin.display(description="revisions")
    def revisions_link(self, bid: Bid) -> str:
        return changelist_link(BidRevision, "revisions", bid__id__exact=bid.pk)

    def get_search_results(
        self, request: Any, queryset: QuerySet[Bid], search_term: str
    ) -> tuple[QuerySet[Bid], bool]:
        # The title's trigram index serves ILIKE, not the UPPER(...) LIKE of admin search.
        term = search_term.strip()
        if not term:
            return queryset, False
        by_title = queryset.filter(bid_search.bid_search_condition(text=term))
        found = by_title | queryset.filter(reference=term)
        if ":" in term and " " not in term:  # a code: exact, served by the codes' GIN index
            found |= queryset.filter(classifications__contains=[term])
        return found, False


@admin.register(BidRevision)
class BidRevisionAdmin(WorkspaceScopedAdmin, BigTableAdmin):
    list_display = ["bid_link", "crawl_link", "changed_fields", "changed_at"]
    list_filter = [("changed_at", admin.DateFieldListFilter)]
    ordering = ["-id"]
    sortable_by = []
    fields = ["bid_link", "crawl_link", "workspace", "changes", "changed_at"]
    readonly_fields = ["bid_link", "crawl_link", "workspace", "changes", "changed_at"]

    @admin.display(description="bid")
    def bid_link(self, revision: BidRevision) -> str:
        return change_link(Bid, revision.bid_id)

    @admin.display(description="crawl")
    def crawl_link(self, revision: BidRevision) -> str:
        return change_link(Crawl, revision.crawl_id)

    @admin.display(description="fields")
    def changed_fields(self, revision: BidRevision) -> str:
        return ", ".join(revision.changes)
