"""Cached analytics answers in the Django cache (Redis), keyed by workspace and parameters.

Each workspace has a generation number in the cache; every answer's key includes it, and the
crawl-event subscriber bumps it when a crawl of the workspace changes bids or finishes, so the
next read misses and recomputes. Old generations expire after ANALYTICS_CACHE_SECONDS.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache


def _generation_key(workspace_id: int) -> str:
    return f"analytics:gen:{workspace_id}"


def generation(*, workspace_id: int) -> int:
    """The workspace's current cache generation (0 before the first bump)."""
    return cache.get(_generation_key(workspace_id)) or 0


def generation_bump(*, workspace_id: int) -> None:
    """Make every cached answer of the workspace stale."""
    key = _generation_key(workspace_id)
    if not cache.add(key, 1, timeout=None):
        try:
            cache.incr(key)
        except ValueError:  # expired or evicted between add and incr
            cache.add(key, 1, timeout=None)


def answer_key(*, workspace_id: int, name: str, params: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
    return f"analytics:{workspace_id}:{generation(workspace_id=workspace_id)}:{name}:{digest[:32]}"


def cached(
    *, workspace_id: int, name: str, params: dict[str, Any], compute: Callable[[], Any]
) -> Any:
    """The cached answer of `name` for these parameters, computed and stored on a miss."""
    seconds = settings.ANALYTICS_CACHE_SECONDS
    if seconds <= 0:
        return compute()
    key = answer_key(workspace_id=workspace_id, name=name, params=params)
    answer = cache.get(key)
    if answer is None:
        answer = compute()
        cache.set(key, answer, seconds)
    return answer
