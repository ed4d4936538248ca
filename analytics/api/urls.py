"""/api/v1/analytics/ (project/urls.py includes it)."""

from django.urls import path

from analytics.api import views

urlpatterns = [
    path("high-value/", views.HighValueView.as_view(), name="analytics-high-value"),
    path("bids-per-day/", views.BidsPerDayView.as_view(), name="analytics-bids-per-day"),
    path("top-departments/", views.TopDepartmentsView.as_view(), name="analytics-top-departments"),
    path("procurement/", views.ProcurementView.as_view(), name="analytics-procurement"),
    path("crawl-health/", views.CrawlHealthView.as_view(), name="analytics-crawl-health"),
]
