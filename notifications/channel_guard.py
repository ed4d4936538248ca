"""The SSRF guard at connect time for Apprise, whose plugins speak HTTP through `requests`.

`guarded()` makes every connection urllib3 opens in this thread (context) resolve the host
once, refuse it if any address is loopback, private, link-local, metadata... (crawls.engine.guard
rules and allowlist), and connect to the very addresses judged: no window between the check and
the connect (DNS rebinding), redirects and Matrix discovery included. Outside `guarded()` the
hook does nothing. docs/notifications.md, "Channels".
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from urllib3.util import connection as urllib3_connection

from crawls.engine import guard


@dataclass
class GuardState:
    """The allowlist in force and the refusals met while sending."""

    allowlist: guard.Allowlist
    refusals: list[guard.Refused] = field(default_factory=list)


_state: contextvars.ContextVar[GuardState | None] = contextvars.ContextVar(
    "channel_guard", default=None
)
_original = urllib3_connection.create_connection


def _vetted_addresses(host: str, port: int, allowlist: guard.Allowlist) -> list[str]:
    """The addresses to connect to for host:port, every one judged; Refused if any is refused."""
    host = host.strip("[]")
    where = f"{host}:{port}"
    allowed = allowlist.allows(host, port)
    try:
        literal = guard.literal_address(host)
    except ValueError as exc:
        raise guard.Refused(where, f"host {host!r} is not a valid IPv6 address") from exc
    if literal is not None:
        reason = None if allowed else guard.forbidden_reason(literal)
        if reason is not None:
            raise guard.Refused(where, reason)
        return [str(literal)]
    # A failed lookup stays a plain OSError (transient: the delivery retries).
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    for text in addresses if not allowed else ():
        reason = guard.forbidden_reason(ipaddress.ip_address(text))
        if reason is not None:
            raise guard.Refused(where, f"host {host!r} resolves to {reason}")
    return addresses


def _guarded_create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
    state = _state.get()
    if state is None:
        return _original(address, *args, **kwargs)
    host, port = address
    try:
        addresses = _vetted_addresses(host, port, state.allowlist)
    except guard.Refused as refused:
        state.refusals.append(refused)
        raise
    error: OSError | None = None
    for ip in addresses:
        try:
            return _original((ip, port), *args, **kwargs)
        except OSError as exc:
            error = exc
    raise error or OSError(f"no address to connect to for {host}")


def install() -> None:
    """Put the hook in place (once per process; inert outside `guarded()`)."""
    urllib3_connection.create_connection = _guarded_create_connection


@contextlib.contextmanager
def guarded(allowlist: guard.Allowlist) -> Iterator[GuardState]:
    """Judge every connection urllib3 makes in this context; the state lists the refusals."""
    install()
    state = GuardState(allowlist)
    token = _state.set(state)
    try:
        yield state
    finally:
        _state.reset(token)
