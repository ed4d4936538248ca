"""Dashboard pages of notifications and alert rules, at the site root (project/urls.py)."""

from django.urls import path

from notifications import channel_views, feeds, views

app_name = "notifications"

urlpatterns = [
    path("notifications/", views.notification_list, name="list"),
    path("notifications/read-all/", views.notification_read_all, name="read_all"),
    path("notifications/<int:notification_id>/read/", views.notification_read, name="read"),
    path("alerts/", views.alert_rule_list, name="rules"),
    path("alerts/new/", views.alert_rule_create, name="rule_create"),
    path("alerts/<int:rule_id>/", views.alert_rule_edit, name="rule_edit"),
    path("alerts/<int:rule_id>/delete/", views.alert_rule_delete, name="rule_delete"),
    path("alerts/<int:rule_id>/feeds/", views.alert_rule_feed_create, name="rule_feed_create"),
    path(
        "alerts/<int:rule_id>/feeds/<int:feed_id>/revoke/",
        views.alert_rule_feed_revoke,
        name="rule_feed_revoke",
    ),
    path("channels/", channel_views.channel_list, name="channels"),
    path("channels/<int:channel_id>/delete/", channel_views.channel_delete, name="channel_delete"),
    path("channels/<int:channel_id>/test/", channel_views.channel_test, name="channel_test"),
    path("feeds/<str:token>/atom/", feeds.RuleAtomFeed(), name="feed_atom"),
    path("feeds/<str:token>/rss/", feeds.RuleRssFeed(), name="feed_rss"),
]
