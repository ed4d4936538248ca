"""What a crawl may fetch and how: its scope (hosts, include/exclude patterns, depth), the guard's
allowlist and the fetch settings of a source."""

from __future__ import annotations

from django.conf import settings
from yarl import URL

from crawls.engine import guard, kinds, patterns, urls
from crawls.engine.fetch import FetchSettings
from crawls.models import Source


class Scope:
    """Which discovered URLs belong to the crawl: hosts, include/exclude patterns, depth.

    Patterns run on RE2 (linear time); one RE2 cannot run (saved before RE2) raises PatternError
    naming it, and the crawl fails with that message."""

    def __init__(self, source: Source, *, seeds: list[str] | None = None):
        """`seeds`: the URLs a crawl starts from when they are not the start URLs themselves
        (an API's request template names its endpoint): their hosts are in scope too."""
        hosts = source.allowed_hosts or [
            URL(u).host or "" for u in [*source.start_urls, *(seeds or [])]
        ]
        self.hosts = frozenset(h.lower().rstrip(".") for h in hosts if h)
        self.include = _compiled("include_patterns", source.include_patterns)
        self.exclude = _compiled("exclude_patterns", source.exclude_patterns)
        self.max_depth = source.max_depth
        # URLs refused only for their depth, until the run has stored its batch: a crawl that
        # left links out did not see the whole board (crawls.engine.presence).
        self.too_deep: set[str] = set()

    def allows(self, url: str, depth: int) -> bool:
        if depth > self.max_depth:
            if self._allows(url):
                self.too_deep.add(url)
            return False
        return self._allows(url)

    def too_deep_hashes(self) -> list[bytes]:
        """The URL hashes of the links refused only for their depth."""
        return [urls.url_hash(url) for url in sorted(self.too_deep)]

    def _allows(self, url: str) -> bool:
        host = (URL(url).host or "").lower()
        if not any(host == h or (h.startswith(".") and host.endswith(h)) for h in self.hosts):
            return False
        if self.include and not any(p.search(url) for p in self.include):
            return False
        return not any(p.search(url) for p in self.exclude)


def _compiled(name: str, values: list[str]) -> list[patterns.Regex]:
    compiled = []
    for index, value in enumerate(values):
        try:
            compiled.append(patterns.Regex(value))
        except patterns.PatternError as exc:
            raise patterns.PatternError(f"{name}[{index}] {value!r}: {exc}") from None
    return compiled


def allowlist() -> guard.Allowlist:
    """The hosts:ports the guard lets through to internal addresses (CRAWL_ALLOWLIST)."""
    return guard.Allowlist.parse(settings.CRAWL_ALLOWLIST)


def fetch_settings(source: Source) -> FetchSettings:
    """How the crawl of `source` fetches: its own politeness and secrets, its kind's content
    types, the deployment's limits."""
    kind = source.kind or kinds.HTML
    return FetchSettings(
        accept=kinds.ACCEPT.get(kind),
        accept_header=kinds.ACCEPT_HEADER[kind],
        error_bodies=kind != kinds.HTML,
        secrets=tuple(sorted((str(k), str(v)) for k, v in (source.secrets or {}).items())),
        allowlist=allowlist(),
        user_agent=source.user_agent or settings.CRAWL_USER_AGENT,
        per_host=source.concurrency_per_host,
        delay=source.delay_seconds,
        obey_robots=source.obey_robots,
        concurrency=settings.CRAWL_CONCURRENCY,
        timeout=settings.CRAWL_REQUEST_TIMEOUT,
        connect_timeout=settings.CRAWL_CONNECT_TIMEOUT,
        max_bytes=settings.CRAWL_MAX_BYTES,
        max_redirects=settings.CRAWL_MAX_REDIRECTS,
        retries=settings.CRAWL_RETRIES,
        backoff=settings.CRAWL_RETRY_BACKOFF,
    )
