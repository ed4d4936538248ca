from django.contrib import admin

from crawls.models import (
    Bid,
    BidRevision,
    Crawl,
    CrawlEvent,
    FrontierUrl,
    Membership,
    Source,
    Workspace,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role"]
    list_select_related = ["user", "workspace"]
    search_fields = ["user__username", "user__email", "workspace__name"]
    raw_id_fields = ["user", "workspace"]


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "workspace",
        "schedule_cron",
        "overlap_policy",
        "max_pages",
        "created_at",
    ]
    list_filter = ["overlap_policy", "obey_robots"]
    list_select_related = ["workspace"]
    search_fields = ["name", "start_urls"]
    raw_id_fields = ["workspace"]


@admin.register(Crawl)
class CrawlAdmin(admin.ModelAdmin):
    list_display = [
        "id", "source", "status", "pages_done", "pages_failed", "items_new", "items_changed",
        "created_at", "finished_at",
    ]  # fmt: skip
    list_filter = ["status"]
    list_select_related = ["source"]
    search_fields = ["source__name"]
    raw_id_fields = ["workspace", "source", "created_by"]
    readonly_fields = ["event_seq", "errors", "heartbeat_at"]


@admin.register(Bid)
class BidAdmin(admin.ModelAdmin):
    list_display = ["title", "department", "views", "amount", "post_date", "deadline", "source"]
    list_filter = ["post_date"]
    list_select_related = ["source"]
    search_fields = ["title", "department", "reference"]
    raw_id_fields = ["workspace", "source", "first_crawl", "last_crawl"]
    show_full_result_count = False


@admin.register(BidRevision)
class BidRevisionAdmin(admin.ModelAdmin):
    list_display = ["bid", "crawl", "changed_at"]
    list_select_related = ["bid", "crawl"]
    raw_id_fields = ["workspace", "bid", "crawl"]
    show_full_result_count = False


@admin.register(CrawlEvent)
class CrawlEventAdmin(admin.ModelAdmin):
    list_display = ["crawl", "sequence", "type", "created_at"]
    list_filter = ["type"]
    raw_id_fields = ["workspace", "crawl"]
    show_full_result_count = False


@admin.register(FrontierUrl)
class FrontierUrlAdmin(admin.ModelAdmin):
    list_display = ["url", "crawl", "kind", "state", "depth", "last_status", "attempts"]
    list_filter = ["state", "kind"]
    raw_id_fields = ["workspace", "crawl"]
    show_full_result_count = False
