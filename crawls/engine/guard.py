"""SSRF guard for the crawler: which URLs and addresses it may fetch.

Two layers: ``check_url`` refuses bad schemes, credentials and literal addresses (in every
encoding the OS resolver accepts) before a request is made; ``GuardedResolver`` checks every
address a name resolves to at connect time, so the address checked is the address connected to
(no DNS rebinding). ``url_refusal`` answers both at once, resolving now, for forms that want to
say "refused" before anything is sent (webhook URLs). Pure Python and aiohttp: no Django here.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

__all__ = [
    "Allowlist",
    "GuardedResolver",
    "Refused",
    "check_url",
    "forbidden_reason",
    "guarded_connector",
    "literal_address",
    "refusal_of",
    "url_refusal",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})


class Refused(OSError):
    """A URL or address the guard will not let the crawler fetch."""

    def __init__(self, url: str, reason: str) -> None:
        # errno None, strerror = reason: aiohttp's ClientConnectorError shows strerror.
        super().__init__(None, reason)
        self.url = url
        self.reason = reason

    def __str__(self) -> str:
        return f"refused {self.url}: {self.reason}"

    def __repr__(self) -> str:
        return f"Refused({self.url!r}, {self.reason!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.url, self.reason))


# --- addresses ---------------------------------------------------------------------------------

_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle instance metadata
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS VPC DNS
        "169.254.169.123",  # AWS time sync
        "100.100.100.200",  # Alibaba Cloud metadata
        "168.63.129.16",  # Azure WireServer: a public address only VMs can reach
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::253",  # AWS VPC DNS over IPv6
        "fd00:ec2::123",  # AWS time sync over IPv6
    )
)


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), label) for net, label in pairs)


# Listed explicitly (not only via is_global) so the reason names the problem and the verdict does
# not drift with the Python patch release's idea of is_global.
_IPV4_FORBIDDEN = _nets(
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("100.64.0.0/10", "carrier-grade NAT (shared)"),
    ("169.254.0.0/16", "link-local"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("198.18.0.0/15", "benchmarking"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)

_IPV6_FORBIDDEN = _nets(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("5f00::/16", "SRv6 SID"),
    ("fc00::/7", "private (unique local)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)

_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries and how, if it carries one."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "Teredo", ip.teredo[1]
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        return "NAT64", low32
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return "IPv4-compatible", low32
    return None


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why the crawler may not connect to ``ip``, or None when it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(int(ip))  # the zone does not change what the address is
    if ip in _METADATA_ADDRESSES:
        return f"cloud metadata address {ip}"
    if isinstance(ip, ipaddress.IPv6Address):
        if int(ip) > 1:  # :: and ::1 are themselves, not IPv4-compatible 0.0.0.0/0.0.0.1
            embedded = _embedded_ipv4(ip)
            if embedded is not None:
                kind, inner = embedded
                inner_reason = forbidden_reason(inner)
                if inner_reason is not None:
                    return f"{kind} address {ip} embeds {inner_reason}"
        table = _IPV6_FORBIDDEN
    else:
        table = _IPV4_FORBIDDEN
    for network, label in table:
        if ip in network:
            return f"{label} address {ip}"
    if ip.is_multicast:
        return f"multicast address {ip}"
    if not ip.is_global:
        return f"non-public address {ip}"
    return None


_INET_ATON_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")
# inet_aton: a.b.c.d, a.b.c (c is 16 bits), a.b (b is 24 bits), a (32 bits).
_INET_ATON_LAST_BITS = {1: 32, 2: 24, 3: 16, 4: 8}


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """Decode ``text`` as glibc's inet_aton does (decimal, octal, hex; 1 to 4 parts)."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        if not part.isascii() or not _INET_ATON_PART.fullmatch(part):
            return None
        if part[:2] in ("0x", "0X"):
            values.append(int(part[2:], 16))
        elif part.startswith("0"):
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *leading, last = values
    if any(v > 0xFF for v in leading) or last >= 1 << _INET_ATON_LAST_BITS[len(values)]:
        return None
    number = last
    for i, v in enumerate(leading):
        number |= v << (24 - 8 * i)
    return ipaddress.IPv4Address(number)


def literal_address(host: str) -> IPAddress | None:
    """The address the OS would read ``host`` (a URL's encoded host) as, or None for a name.

    IPv4 is decoded like inet_aton: "2130706433", "0x7f.1", "0177.0.0.1", "127.1" are all
    127.0.0.1. Trailing dots are ignored. Raises ValueError for a malformed IPv6 literal.
    """
    host = host.strip("[]")
    if ":" in host:
        return ipaddress.IPv6Address(host.replace("%25", "%"))
    return _inet_aton(host.rstrip("."))


# --- URLs --------------------------------------------------------------------------------------


def _encoded_host(host: str) -> str:
    return host.lower().strip("[]")


@dataclass(frozen=True)
class Allowlist:
    """(host, port) pairs the guard lets through although their address is not public."""

    entries: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, values: Iterable[str]) -> Allowlist:
        """Parse "host:port" entries ("127.0.0.1:8765", "localhost:8765", "[::1]:8080")."""
        entries = set()
        for value in values:
            entry = value.strip()
            if not entry or any(c in entry for c in "/?#@\\ "):
                raise ValueError(f"allowlist entry {value!r} is not host:port")
            try:
                url = URL(f"http://{entry}")
            except ValueError as exc:
                raise ValueError(f"allowlist entry {value!r} is not host:port ({exc})") from exc
            if not url.raw_host:
                raise ValueError(f"allowlist entry {value!r} has no host")
            if ":" in url.raw_host and not entry.startswith("["):
                raise ValueError(f"allowlist entry {value!r}: write an IPv6 host as [addr]:port")
            if url.explicit_port is None:
                raise ValueError(f"allowlist entry {value!r} has no port (host:port)")
            if url.explicit_port == 0:
                raise ValueError(f"allowlist entry {value!r}: port 0 cannot be fetched")
            entries.add((_encoded_host(url.raw_host), url.explicit_port))
        return cls(frozenset(entries))

    def allows(self, host: str, port: int) -> bool:
        """Whether ``host`` (as in the URL's encoded host) on ``port`` is allowlisted."""
        return (_encoded_host(host), port) in self.entries


# Letters, digits, hyphen, dot, underscore: anything else in an encoded host cannot be a DNS name.
_HOSTNAME = re.compile(r"[a-z0-9_.-]+")


def check_url(url: str | URL, *, allowlist: Allowlist) -> URL:
    """Parse ``url`` and refuse it unless it is http(s), credential-free and not aimed at a
    non-public literal address. No DNS: names are judged by GuardedResolver at connect time."""
    text = str(url)
    try:
        parsed = url if isinstance(url, URL) else URL(url)
    except (ValueError, TypeError) as exc:
        raise Refused(text, f"malformed URL ({exc})") from exc
    if not parsed.scheme:
        raise Refused(text, "URL has no scheme (only http and https are fetched)")
    if parsed.scheme not in ALLOWED_SCHEMES:
        raise Refused(text, f"scheme {parsed.scheme!r} is not http or https")
    if parsed.user is not None or parsed.password is not None or "@" in parsed.raw_authority:
        raise Refused(text, "credentials in URL")
    host = parsed.raw_host
    if not host:
        raise Refused(text, "URL has no host")
    port = parsed.port
    if port is None or port == 0:
        raise Refused(text, f"port {port} cannot be fetched")
    if allowlist.allows(host, port):
        return parsed
    try:
        address = literal_address(host)
    except ValueError as exc:
        raise Refused(text, f"host {host!r} is not a valid IPv6 address") from exc
    if address is None:
        if not _HOSTNAME.fullmatch(host.lower()):
            raise Refused(text, f"host {host!r} has characters a host name cannot have")
        return parsed
    reason = forbidden_reason(address)
    if reason is not None:
        raise Refused(text, reason)
    return parsed


# --- connect time ------------------------------------------------------------------------------


class GuardedResolver(AbstractResolver):
    """Resolves with ``base`` and refuses a host if any address it resolves to is forbidden."""

    def __init__(self, allowlist: Allowlist, base: AbstractResolver | None = None) -> None:
        self.allowlist = allowlist
        self._base = base
        self._owns_base = base is None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host``; raise Refused if it does not resolve or any address is forbidden."""
        if self._base is None:
            # ThreadedResolver wants a running loop, so it is made on first use.
            self._base = ThreadedResolver()
        where = f"{host}:{port}"
        try:
            results = await self._base.resolve(host, port, family)
        except Refused:
            raise
        except TimeoutError:
            raise
        except OSError as exc:
            detail = exc.strerror or str(exc)
            raise Refused(where, f"host {host!r} does not resolve ({detail})") from exc
        if not results:
            raise Refused(where, f"host {host!r} does not resolve (no addresses)")
        if self.allowlist.allows(host, port):
            return results
        reason = _resolved_refusal(host, [result["host"] for result in results])
        if reason is not None:
            raise Refused(where, reason)
        return results

    async def close(self) -> None:
        """Close the base resolver if this resolver made it."""
        if self._owns_base and self._base is not None:
            await self._base.close()


def _resolved_refusal(host: str, addresses: Iterable[str]) -> str | None:
    """Why ``host`` is refused given the addresses it resolves to (any forbidden one), or None."""
    for text in addresses:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return f"host {host!r} resolves to unreadable address {text!r}"
        reason = forbidden_reason(address)
        if reason is not None:
            return f"host {host!r} resolves to {reason}"
    return None


def url_refusal(url: str | URL, *, allowlist: Allowlist) -> str | None:
    """Why the guard refuses ``url`` now, resolving its host name (blocking DNS), else None.

    ``check_url``, then every address the name resolves to must be public. A name that does not
    resolve (yet) is not refused here: the connect-time check (GuardedResolver) judges it again."""
    try:
        parsed = check_url(url, allowlist=allowlist)
    except Refused as refused:
        return refused.reason
    host, port = parsed.raw_host or "", parsed.port or 0
    if allowlist.allows(host, port) or literal_address(host) is not None:
        return None  # allowlisted, or a literal address check_url has judged
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return None
    return _resolved_refusal(host, [str(info[4][0]).split("%")[0] for info in infos])


def guarded_connector(
    *, allowlist: Allowlist, base_resolver: AbstractResolver | None = None, **connector_kwargs: Any
) -> aiohttp.TCPConnector:
    """A TCPConnector whose every name lookup goes through GuardedResolver, uncached."""
    return aiohttp.TCPConnector(
        resolver=GuardedResolver(allowlist, base_resolver),
        use_dns_cache=False,
        **connector_kwargs,
    )


def refusal_of(exc: BaseException) -> Refused | None:
    """The Refused behind an exception raised by aiohttp (or Refused itself), else None."""
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, Refused):
            return current
        os_error = getattr(current, "os_error", None)
        linked = [os_error, current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):
            linked.extend(current.exceptions)
        pending.extend(e for e in linked if isinstance(e, BaseException))
    return None
