import sys

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from crawls import views as crawls_views
from crawls.api import errors
from project import health, http

urlpatterns = [
    path("", crawls_views.overview, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/analytics/", include("analytics.api.urls")),
    path("api/v1/", include("crawls.api.urls")),
    path("api/v1/", include("notifications.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("notifications.urls")),
    path("analytics/", include("analytics.urls")),
    path("", include("crawls.urls")),
]

admin.site.site_header = "Forest administration"
admin.site.site_title = "Forest"


def handler404(request, exception):
    """API paths answer in the API's error envelope; pages with Django's page."""
    if request.path.startswith("/api/"):
        return errors.api_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def handler400(request, exception):
    """Django's own refusals (SuspiciousOperation: too many fields, a bad Host...)."""
    if request.path.startswith("/api/"):
        return errors.api_bad_request(request, exception)
    return defaults.bad_request(request, exception)


def handler500(request):
    # Called while the exception is handled: one raised by a middleware (a session saved while
    # the database is down) never reached OutageMiddleware.process_exception.
    outage = http.outage_response(request, sys.exc_info()[1])
    if outage is not None:
        return outage
    if request.path.startswith("/api/"):
        return errors.api_server_error(request)
    return defaults.server_error(request)
