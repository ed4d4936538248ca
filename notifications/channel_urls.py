"""Apprise URLs of notification channels: which services are allowed (CHANNEL_SERVICES), which
hosts a URL makes Apprise contact and what the SSRF guard says of them, the redacted form shown
to people, and redaction of the URL's secrets from error text. docs/notifications.md, "Channels".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

import apprise
from apprise.plugins.base import NotifyBase
from django.conf import settings

from crawls.engine import guard

# Services whose hosts are Apprise's constants, not the user's (the guard still judges them at
# connect time): resolving them at save would only make saving depend on the network.
FIXED_HOSTS: dict[str, tuple[str, ...]] = {
    "slack": ("hooks.slack.com", "slack.com"),
    "discord": ("discord.com",),
    "tgram": ("api.telegram.org",),
}
NTFY_CLOUD = ("ntfy.sh",)
MATRIX_T2BOT = ("webhooks.t2bot.io",)
SECRET_MIN_LENGTH = 4  # shorter pieces of a URL ("yes", "443") are no secrets worth the noise
_PIECES = re.compile(r"[/:@?&=#,+\s]+")


class ChannelURLError(ValueError):
    """An Apprise URL that cannot be a channel (unknown, unparsable, not allowed, refused)."""


@dataclass(frozen=True)
class ChannelURL:
    """A parsed, allowed Apprise URL."""

    url: str
    service: str
    plugin: NotifyBase

    @property
    def display(self) -> str:
        """Apprise's privacy form of the URL (secrets masked), without its option query."""
        url: str = self.plugin.url(privacy=True)  # type: ignore[no-untyped-call]
        return url.split("?", 1)[0][:300]


def channel_allowlist() -> guard.Allowlist:
    """The crawler's allowlist (CRAWL_ALLOWLIST): channels obey the same guard as webhooks."""
    return guard.Allowlist.parse(settings.CRAWL_ALLOWLIST)


URL_MAX_LENGTH = 2000


def scheme_of(url: str) -> str:
    """The URL's scheme, lower case ("" when it has none)."""
    scheme, sep, _ = url.strip().partition("://")
    return scheme.lower() if sep else ""


def channel_url_parse(url: str) -> ChannelURL:
    """Parse an Apprise URL of an allowed service; ChannelURLError says why not.

    The scheme is checked before Apprise sees the URL, so plugins outside CHANNEL_SERVICES
    (desktop, syslog, file...) are never even instantiated."""
    url = url.strip()
    if len(url) > URL_MAX_LENGTH:  # also the forms' bound; here for every caller
        raise ChannelURLError(f"longer than {URL_MAX_LENGTH} characters")
    scheme = scheme_of(url)
    if not scheme:
        raise ChannelURLError("not an Apprise URL (service://...)")
    allowed = {s.lower() for s in settings.CHANNEL_SERVICES}
    if scheme not in allowed:
        raise ChannelURLError(
            f"service {scheme!r} is not allowed (allowed: {', '.join(sorted(allowed))})"
        )
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if not isinstance(plugin, NotifyBase):
        raise ChannelURLError(f"not a valid {scheme} URL")
    return ChannelURL(url=url, service=scheme, plugin=plugin)


def channel_hosts(parsed: ChannelURL) -> list[tuple[str, int, bool]]:
    """The (host, port, user-given) targets the URL makes Apprise contact first (a Matrix
    server's discovery or a redirect may lead further: the connect-time guard judges those)."""
    plugin = parsed.plugin
    secure = bool(getattr(plugin, "secure", True))
    port = getattr(plugin, "port", None) or (443 if secure else 80)
    fixed = FIXED_HOSTS.get(parsed.service)
    if getattr(plugin, "mode", None) == "cloud" and parsed.service in ("ntfy", "ntfys"):
        fixed = NTFY_CLOUD
    elif getattr(plugin, "mode", None) == "t2bot":
        fixed = MATRIX_T2BOT
    if fixed is not None:
        return [(host, 443, False) for host in fixed]
    host = str(getattr(plugin, "host", "") or "")
    return [(host, int(port), True)]


def channel_url_refusal(parsed: ChannelURL) -> str | None:
    """Why the guard refuses a host the URL makes Apprise contact (literal or resolved now:
    loopback, private, link-local, metadata...), else None. Fixed service hosts are not
    resolved here. A name that does not resolve now is judged again at send."""
    allowlist = channel_allowlist()
    for host, port, user_given in channel_hosts(parsed):
        if not user_given:
            continue
        if not host:
            return "URL has no host"
        bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
        refusal = guard.url_refusal(f"http://{bracketed}:{port}/", allowlist=allowlist)
        if refusal:
            return refusal
    return None


def channel_url_check(url: str) -> ChannelURL:
    """Parse and judge a channel URL as saving does; ChannelURLError says why it cannot be."""
    parsed = channel_url_parse(url)
    refusal = channel_url_refusal(parsed)
    if refusal:
        raise ChannelURLError(f"refused: {refusal}")
    return parsed


def secret_pieces(url: str, display: str) -> list[str]:
    """The pieces of `url` that its redacted display does not show: what must never be told."""
    _, _, rest = url.partition("://")
    pieces = {p for p in _PIECES.split(rest) if len(p) >= SECRET_MIN_LENGTH}
    shown = set(_PIECES.split(unquote(display.partition("://")[2])))
    return sorted(pieces - shown, key=len, reverse=True)


def redact(text: str, *, url: str, display: str) -> str:
    """`text` with the URL and every secret piece of it replaced by ****."""
    text = text.replace(url, display)
    for piece in secret_pieces(url, display):
        text = text.replace(piece, "****")
    return text
