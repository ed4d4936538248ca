"""The replay's target: only loopback, or hosts the operator names (--allow), ever.

The opposite of the crawler's guard (crawls/engine/guard.py), which refuses loopback: a replay
sends a recorded burst of traffic, so it may only be aimed at a Forest of one's own. A literal
address is read as the OS would read it (guard.literal_address: "127.1", "0x7f.0.0.1"); a name
is loopback only when it is "localhost".
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from crawls.engine import guard

_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


class TargetRefused(ValueError):
    """A target the replay will not send traffic to."""


def _allowed(host: str, port: int, allow: Iterable[str]) -> bool:
    for entry in allow:
        name, _, entry_port = entry.strip().lower().rpartition(":")
        if not name or not entry_port.isdigit():  # "host" alone: any port
            name, entry_port = entry.strip().lower(), ""
        if name.strip("[]") == host and (not entry_port or int(entry_port) == port):
            return True
    return False


def check_target(url: str, *, allow: Iterable[str] = ()) -> str:
    """The target's base URL (no trailing slash), or TargetRefused saying why."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(f"target {url!r}: only http and https targets are replayed to")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise TargetRefused(f"target {url!r}: give scheme://host[:port][/prefix] only")
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused(f"target {url!r}: {exc}") from exc
    if not host:
        raise TargetRefused(f"target {url!r} has no host")
    if _allowed(host, port, allow):
        return url.rstrip("/")
    try:
        address = guard.literal_address(host)
    except ValueError as exc:
        raise TargetRefused(f"target {url!r}: {exc}") from exc
    if host in _LOOPBACK_NAMES or (address is not None and address.is_loopback):
        return url.rstrip("/")
    raise TargetRefused(
        f"target {url!r} is not loopback: replay only to 127.0.0.0/8, ::1 or localhost, "
        f"or name the host with --allow {host}"
    )
