"""Request rates per caller (token, else user) and per workspace, counted in Redis.

Rates come from settings (API_RATE_* environment variables, DRF's form: "1200/min"). Crawl
creation has its own, stricter rate. A throttled request answers 429 with Retry-After.

Counting is the `limits` library's sliding window counter: one Lua call in Redis per throttle
and request, whatever the rate (DRF's SimpleRateThrottle reads and rewrites a list of every
request's time in the window: two round trips and a pickle that grows with the rate).
"""

from __future__ import annotations

import functools
import time

from django.conf import settings
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from crawls.api.auth import request_token

KEY_PREFIX = "forest-throttle"
_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@functools.cache
def limiter() -> SlidingWindowCounterRateLimiter:
    return SlidingWindowCounterRateLimiter(RedisStorage(settings.REDIS_URL, key_prefix=KEY_PREFIX))


@functools.cache
def parse_rate(rate: str) -> RateLimitItem:
    """DRF's rate form, "<count>/<s|sec|m|min|h|hour|d|day>", as a `limits` item."""
    count, _, period = rate.partition("/")
    return RateLimitItemPerSecond(int(count), _PERIODS[period[:1]])


class RedisRateThrottle(BaseThrottle):
    scope = ""
    rate: str | None = None  # None: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope]

    def ident(self, request) -> str | None:
        """Who is counted; None: this throttle does not apply."""
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        ident = self.ident(request)
        if ident is None:
            return True
        self.item = parse_rate(self.rate or api_settings.DEFAULT_THROTTLE_RATES[self.scope])
        self.key = (self.scope, ident)
        return limiter().hit(self.item, *self.key)

    def wait(self) -> float:
        reset = limiter().get_window_stats(self.item, *self.key).reset_time
        return max(1.0, reset - time.time())


class CallerRateThrottle(RedisRateThrottle):
    scope = "caller"

    def ident(self, request) -> str:
        token = request_token(request)
        if token is not None:
            return f"token:{token.pk}"
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"ip:{self.get_ident(request)}"


class WorkspaceRateThrottle(RedisRateThrottle):
    """All tokens of a workspace together (session callers are counted per caller only)."""

    scope = "workspace"

    def ident(self, request) -> str | None:
        token = request_token(request)
        return None if token is None else str(token.workspace_id)


class CrawlCreateThrottle(CallerRateThrottle):
    """Starting crawls: applied by the actions that start one."""

    scope = "crawl_create"
