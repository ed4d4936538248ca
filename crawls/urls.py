"""Dashboard pages, at the site root (project/urls.py includes them)."""

from django.urls import path

from crawls import bid_views, import_views, token_views, views

app_name = "crawls"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("workspace/", views.workspace_switch, name="workspace_switch"),
    path("crawls/<int:crawl_id>/", views.crawl_detail, name="crawl"),
    path("crawls/<int:crawl_id>/items/", views.crawl_items, name="crawl_items"),
    path("crawls/<int:crawl_id>/cancel/", views.crawl_cancel, name="crawl_cancel"),
    path("crawls/<int:crawl_id>/retry/", views.crawl_retry, name="crawl_retry"),
    path("sources/", views.source_list, name="sources"),
    path("sources/new/", views.source_create, name="source_create"),
    path("sources/<int:source_id>/", views.source_edit, name="source_edit"),
    path("sources/<int:source_id>/crawl/", views.crawl_start, name="crawl_start"),
    path("bids/", bid_views.bid_list, name="bids"),
    path("bids/<int:bid_id>/", bid_views.bid_detail, name="bid"),
    path("sources/<int:source_id>/import/", import_views.source_import, name="source_import"),
    path("imports/<int:job_id>/", import_views.import_detail, name="import"),
    path("tokens/", token_views.token_list, name="tokens"),
    path("tokens/<int:token_id>/revoke/", token_views.token_revoke, name="token_revoke"),
]
