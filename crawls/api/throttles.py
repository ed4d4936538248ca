"""Request rates per caller (token, else user) and per workspace, counted in Redis (the cache).

Rates come from settings (API_RATE_* environment variables). Crawl creation has its own, stricter
rate. A throttled request answers 429 with Retry-After.
"""

from rest_framework.throttling import SimpleRateThrottle

from crawls.api.auth import request_token


class CallerRateThrottle(SimpleRateThrottle):
    scope = "caller"

    def get_cache_key(self, request, view):
        token = request_token(request)
        if token is not None:
            ident = f"token:{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class WorkspaceRateThrottle(SimpleRateThrottle):
    """All tokens of a workspace together (session callers are counted per caller only)."""

    scope = "workspace"

    def get_cache_key(self, request, view):
        token = request_token(request)
        if token is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": token.workspace_id}


class CrawlCreateThrottle(CallerRateThrottle):
    """Starting crawls: applied by the actions that start one."""

    scope = "crawl_create"
