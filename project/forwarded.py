"""The client's address behind the reverse proxy, and only behind it.

The proxy (project/serving.py, deploy/nginx.conf) sets X-Forwarded-For to the address it saw,
replacing whatever the client sent. A request that comes from a trusted proxy (TRUSTED_PROXIES:
addresses or networks) gets that address as REMOTE_ADDR; from anyone else the header is dropped,
so that a client talking to gunicorn or daphne directly cannot choose the address the throttles
count (with the header gone, DRF's get_ident reads REMOTE_ADDR).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def _trusted(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry)


def is_trusted_proxy(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _trusted(tuple(settings.TRUSTED_PROXIES)))


def client_address_resolve(meta: dict[str, Any]) -> None:
    """REMOTE_ADDR := the proxy's X-Forwarded-For when the peer is a trusted proxy; the header is
    removed in every case (nothing downstream reads it)."""
    forwarded = meta.pop("HTTP_X_FORWARDED_FOR", None)
    if not forwarded or not is_trusted_proxy(meta.get("REMOTE_ADDR", "")):
        return
    # The proxy wrote one address; should a chain reach us, its last hop is the one it saw.
    candidate = forwarded.rsplit(",", 1)[-1].strip()
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return
    meta["REMOTE_ADDR"] = candidate


class ForwardedForMiddleware:
    """client_address_resolve() on every request, sync (gunicorn) or async (daphne)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
        client_address_resolve(request.META)
        response: HttpResponse = self.get_response(request)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        client_address_resolve(request.META)
        response: HttpResponse = await self.get_response(request)
        return response
