"""The SSRF guard: hostile URLs refused, public ones let through, names judged at connect time.

DNS of public names is out of reach here, so name cases use a stub base resolver; the real
aiohttp client and server run on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import pickle
import re
import socket

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from crawls.engine.guard import (
    Allowlist,
    GuardedResolver,
    Refused,
    check_url,
    forbidden_reason,
    guarded_connector,
    literal_address,
    refusal_of,
    url_refusal,
)

NOTHING = Allowlist()


def run(coro):
    return asyncio.run(coro)


def refused_reason(url: str, allowlist: Allowlist = NOTHING) -> str:
    with pytest.raises(Refused) as caught:
        check_url(url, allowlist=allowlist)
    assert caught.value.url == url
    return caught.value.reason


HOSTILE = [
    # IPv4 loopback in the encodings getaddrinfo/inet_aton accept
    ("http://127.0.0.1/", "loopback address 127.0.0.1"),
    ("https://127.0.0.1:8443/admin", "loopback address 127.0.0.1"),
    ("http://2130706433/", "loopback address 127.0.0.1"),
    ("http://0177.0.0.1/", "loopback address 127.0.0.1"),
    ("http://017700000001/", "loopback address 127.0.0.1"),
    ("http://0x7f.0.0.1/", "loopback address 127.0.0.1"),
    ("http://0x7f000001/", "loopback address 127.0.0.1"),
    ("http://0X7F.1/", "loopback address 127.0.0.1"),
    ("http://127.1/", "loopback address 127.0.0.1"),
    ("http://127.000.000.001/", "loopback address 127.0.0.1"),
    ("http://127.0.0.1./", "loopback address 127.0.0.1"),
    ("http://①②⑦.0.0.1/", "loopback address 127.0.0.1"),
    ("http://127.255.255.254:6379/", "loopback address 127.255.255.254"),
    # cloud metadata, plainly and encoded
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata address 169.254.169.254"),
    ("http://2852039166/latest/meta-data/", "cloud metadata address 169.254.169.254"),
    ("http://0xa9fea9fe/computeMetadata/v1/", "cloud metadata address 169.254.169.254"),
    ("http://169.254.170.2/v2/credentials", "cloud metadata address 169.254.170.2"),
    ("http://100.100.100.200/latest/meta-data/", "cloud metadata address 100.100.100.200"),
    ("http://168.63.129.16/machine", "cloud metadata address 168.63.129.16"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata address fd00:ec2::254"),
    ("http://[::ffff:169.254.169.254]/", "cloud metadata address 169.254.169.254"),
    # IPv6 forms
    ("http://[::1]/", "loopback address ::1"),
    ("http://[0:0:0:0:0:0:0:1]:8080/", "loopback address ::1"),
    ("http://[::ffff:127.0.0.1]/", "IPv4-mapped address ::ffff:7f00:1 embeds loopback"),
    ("http://[::ffff:7f00:1]/", "IPv4-mapped address ::ffff:7f00:1 embeds loopback"),
    ("http://[0:0:0:0:0:ffff:127.0.0.1]/", "IPv4-mapped address ::ffff:7f00:1 embeds loopback"),
    ("http://[::127.0.0.1]/", "IPv4-compatible address ::7f00:1 embeds loopback"),
    ("http://[64:ff9b::7f00:1]/", "NAT64 address 64:ff9b::7f00:1 embeds loopback"),
    ("http://[64:ff9b::10.0.0.1]/", "NAT64 address 64:ff9b::a00:1 embeds private"),
    ("http://[2002:7f00:1::]/", "6to4 address 2002:7f00:1:: embeds loopback"),
    ("http://[2002:a9fe:a9fe::1]/", "6to4 address 2002:a9fe:a9fe::1 embeds cloud metadata"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "Teredo address"),
    ("http://[::ffff:10.1.2.3]/", "embeds private address 10.1.2.3"),
    ("http://[::]/", "unspecified address ::"),
    ("http://[fe80::1]/", "link-local address fe80::1"),
    ("http://[fe80::1%25eth0]/", "link-local address fe80::1"),
    ("http://[fec0::1]/", "site-local address fec0::1"),
    ("http://[fc00::1]/", "private (unique local) address fc00::1"),
    ("http://[fd12:3456:789a::1]/", "private (unique local) address fd12:3456:789a::1"),
    ("http://[ff02::1]/", "multicast address ff02::1"),
    ("http://[2001:db8::1]/", "documentation address 2001:db8::1"),
    ("http://[64:ff9b:1::a00:1]/", "local-use NAT64 address"),
    # private, shared, link-local, special IPv4
    ("http://10.0.0.1/", "private address 10.0.0.1"),
    ("http://10.255.255.255:22/", "private address 10.255.255.255"),
    ("http://012.1/", "private address 10.0.0.1"),
    ("http://172.16.0.1/", "private address 172.16.0.1"),
    ("http://172.31.255.254/", "private address 172.31.255.254"),
    ("http://192.168.1.1/", "private address 192.168.1.1"),
    ("http://0xc0a80001/", "private address 192.168.0.1"),
    ("http://100.64.0.1/", "carrier-grade NAT (shared) address 100.64.0.1"),
    ("http://100.127.255.254/", "carrier-grade NAT (shared) address 100.127.255.254"),
    ("http://169.254.1.1/", "link-local address 169.254.1.1"),
    ("http://0.0.0.0/", "unspecified address 0.0.0.0"),
    ("http://0/", "unspecified address 0.0.0.0"),
    ("http://0.1.2.3/", "unspecified address 0.1.2.3"),
    ("http://224.0.0.1/", "multicast address 224.0.0.1"),
    ("http://239.255.255.250:1900/", "multicast address 239.255.255.250"),
    ("http://255.255.255.255/", "broadcast address 255.255.255.255"),
    ("http://240.0.0.1/", "reserved address 240.0.0.1"),
    ("http://192.0.2.1/", "documentation address 192.0.2.1"),
    ("http://198.51.100.7/", "documentation address 198.51.100.7"),
    ("http://203.0.113.9/", "documentation address 203.0.113.9"),
    ("http://198.18.0.1/", "benchmarking address 198.18.0.1"),
    ("http://192.0.0.8/", "IETF protocol assignment address 192.0.0.8"),
    # schemes
    ("file:///etc/passwd", "scheme 'file' is not http or https"),
    ("gopher://127.0.0.1:6379/_INFO", "scheme 'gopher' is not http or https"),
    ("ftp://example.com/pub/", "scheme 'ftp' is not http or https"),
    ("javascript:alert(1)", "scheme 'javascript' is not http or https"),
    ("data:text/html,<script>alert(1)</script>", "scheme 'data' is not http or https"),
    ("dict://127.0.0.1:11211/stats", "scheme 'dict' is not http or https"),
    ("ws://example.com/socket", "scheme 'ws' is not http or https"),
    ("//example.com/", "URL has no scheme"),
    ("example.com/notices", "URL has no scheme"),
    # credentials
    ("http://user:pass@example.com/", "credentials in URL"),
    ("http://user@example.com/", "credentials in URL"),
    ("http://:secret@example.com/", "credentials in URL"),
    ("http://example.com@127.0.0.1/", "credentials in URL"),
    # no host, unusable host or port
    ("http:///etc/passwd", "URL has no host"),
    ("http://", "URL has no host"),
    ("https:?q=1", "URL has no host"),
    ("http://exa mple.com/", "has characters a host name cannot have"),
    ("http://127%2e0%2e0%2e1/", "has characters a host name cannot have"),
    ("http://example.com:99999/", "malformed URL"),
    ("http://example.com:0/", "port 0 cannot be fetched"),
]


@pytest.mark.parametrize(("url", "reason"), HOSTILE, ids=[url for url, _ in HOSTILE])
def test_check_url_refuses_hostile_urls(url, reason):
    assert reason in refused_reason(url)


def test_the_hostile_table_is_broad():
    assert len(HOSTILE) >= 40
    assert len({url for url, _ in HOSTILE}) == len(HOSTILE)


PUBLIC = [
    ("https://example.com/", "example.com"),
    ("http://93.184.216.34:8080/x", "93.184.216.34"),
    ("http://bücher.de/aktuell", "xn--bcher-kva.de"),
    ("https://공고.한국/목록?page=2", "xn--299aob.xn--3e0b707e"),
    ("http://[2606:4700::1111]/", "2606:4700::1111"),
    ("https://www.example.org:8443/a?b=c#d", "www.example.org"),
    ("http://8.8.8.8/", "8.8.8.8"),
    ("HTTP://Example.COM/Notices", "example.com"),
    ("http://localhost:8765/", "localhost"),  # a name: GuardedResolver judges it
    # just outside the refused ranges
    ("http://11.0.0.1/", "11.0.0.1"),
    ("http://172.32.0.1/", "172.32.0.1"),
    ("http://100.128.0.1/", "100.128.0.1"),
    ("http://169.255.0.1/", "169.255.0.1"),
    ("http://223.255.255.254/", "223.255.255.254"),
]


@pytest.mark.parametrize(("url", "host"), PUBLIC, ids=[url for url, _ in PUBLIC])
def test_check_url_lets_public_urls_through(url, host):
    checked = check_url(url, allowlist=NOTHING)
    assert isinstance(checked, URL)
    assert checked == URL(url)
    assert checked.raw_host == host


def test_check_url_accepts_a_yarl_url():
    url = URL("https://example.com/board")
    assert check_url(url, allowlist=NOTHING) is url
    with pytest.raises(Refused, match="loopback"):
        check_url(URL("http://127.1/"), allowlist=NOTHING)


# glibc's inet_aton is what getaddrinfo uses on the hosts we deploy to: decode exactly as it does.
INET_ATON_FORMS = [
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "0x7f.1",
    "0x7f000001",
    "0X7F.0X0.0.01",
    "017700000001",
    "0177.0.0.1",
    "127.000.000.001",
    "00000000000000000000000000177.0.0.1",
    "0x00000000000000007f.1",
    "0",
    "00",
    "4294967295",
    "4294967296",
    "0xffffffff",
    "0x100000000",
    "1.0xffffff",
    "1.0x1000000",
    "1.2.65535",
    "1.2.65536",
    "256.0.0.1",
    "1.256.0.1",
    "0x100.0.0.1",
    "0x",
    "0x.0.0.1",
    "09",
    "08.0.0.1",
    "0xg",
    "1..1",
    ".1",
    "1.2.3.4.5",
    "+1.2.3.4",
    "1.2.3.-4",
    "1_0.0.0.1",
    "\uff11\uff12\uff17.0.0.1",  # fullwidth digits
    "example.com",
    "93.184.216.34",
    "1572395042",
]


def inet_aton_or_none(text: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, UnicodeError):
        return None


# Forest runs on Linux: the reference is glibc's inet_aton, what getaddrinfo will do.
@pytest.mark.parametrize("text", INET_ATON_FORMS)
def test_literal_address_decodes_ipv4_like_inet_aton(text):
    assert literal_address(text) == inet_aton_or_none(text)


def test_literal_address_spot_values():
    assert literal_address("0x7f.1") == ipaddress.IPv4Address("127.0.0.1")
    assert literal_address("127.0.0.1.") == ipaddress.IPv4Address("127.0.0.1")
    assert literal_address("1572395042") == ipaddress.IPv4Address("93.184.216.34")
    assert literal_address("[::ffff:7f00:1]") == ipaddress.IPv6Address("::ffff:127.0.0.1")
    assert literal_address("example.com") is None
    assert literal_address("1.2.3.4.5") is None
    with pytest.raises(ValueError, match="::1::"):
        literal_address("::1::")


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700::1111", "2a00:1450:4001:82b::200e"],
)
def test_forbidden_reason_is_none_for_public_addresses(address):
    assert forbidden_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback address 127.0.0.1"),
        ("10.20.30.40", "private address 10.20.30.40"),
        ("100.64.0.1", "carrier-grade NAT (shared) address 100.64.0.1"),
        ("169.254.169.254", "cloud metadata address 169.254.169.254"),
        ("fd00:ec2::254", "cloud metadata address fd00:ec2::254"),
        ("fe80::1%eth0", "link-local address fe80::1"),
        ("ff05::2", "multicast address ff05::2"),
        (
            "::ffff:192.168.0.1",
            "IPv4-mapped address ::ffff:c0a8:1 embeds private address 192.168.0.1",
        ),
        (
            "64:ff9b::a9fe:a9fe",
            "NAT64 address 64:ff9b::a9fe:a9fe embeds cloud metadata address 169.254.169.254",
        ),
        ("100::1", "discard-only address 100::1"),
    ],
)
def test_forbidden_reason_names_the_problem(address, reason):
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


def test_refused_is_an_oserror_that_keeps_url_and_reason():
    refused = Refused("http://127.1/", "loopback address 127.0.0.1")
    assert isinstance(refused, OSError)
    assert (refused.url, refused.reason) == ("http://127.1/", "loopback address 127.0.0.1")
    assert refused.strerror == "loopback address 127.0.0.1"
    assert str(refused) == "refused http://127.1/: loopback address 127.0.0.1"
    copy = pickle.loads(pickle.dumps(refused))  # noqa: S301 - our own object
    assert (type(copy), copy.url, copy.reason) == (Refused, refused.url, refused.reason)


# --- allowlist ---------------------------------------------------------------------------------


def test_allowlist_parses_host_port_entries():
    allowlist = Allowlist.parse(
        ["127.0.0.1:8765", " LocalHost:8765 ", "[::1]:8080", "[0:0:0:0:0:0:0:1]:81"]
    )
    assert allowlist.entries == frozenset(
        {("127.0.0.1", 8765), ("localhost", 8765), ("::1", 8080), ("::1", 81)}
    )
    assert allowlist.allows("127.0.0.1", 8765)
    assert allowlist.allows("LOCALHOST", 8765)
    assert allowlist.allows("[::1]", 8080)
    assert not allowlist.allows("127.0.0.1", 8766)
    assert not allowlist.allows("127.0.0.2", 8765)
    assert Allowlist.parse([]) == Allowlist()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("127.0.0.1", "has no port"),
        ("localhost:", "has no port"),
        ("[::1]", "has no port"),
        ("::1:8080", "is not host:port"),
        ("http://127.0.0.1:8765", "is not host:port"),
        ("127.0.0.1:8765/path", "is not host:port"),
        ("user@127.0.0.1:8765", "is not host:port"),
        ("localhost:http", "is not host:port"),
        ("localhost:70000", "is not host:port"),
        ("localhost:0", "port 0"),
        ("", "is not host:port"),
        (":8765", "is not host:port"),
    ],
)
def test_allowlist_rejects_bad_entries(entry, message):
    with pytest.raises(ValueError, match="allowlist entry") as caught:
        Allowlist.parse(["127.0.0.1:1", entry])
    assert repr(entry) in str(caught.value)
    assert message in str(caught.value)


def test_allowlisted_host_and_port_pass_check_url_and_nothing_else():
    allowlist = Allowlist.parse(["127.0.0.1:8765"])
    assert check_url("http://127.0.0.1:8765/notices", allowlist=allowlist).port == 8765
    assert "loopback" in refused_reason("http://127.0.0.1:8766/", allowlist)
    assert "loopback" in refused_reason("http://127.1:8765/", allowlist)
    # the allowlist skips the address check only
    assert "scheme 'ftp'" in refused_reason("ftp://127.0.0.1:8765/", allowlist)
    assert "credentials" in refused_reason("http://u:p@127.0.0.1:8765/", allowlist)


# --- resolver ----------------------------------------------------------------------------------


class StubResolver(AbstractResolver):
    """Answers from a script: one answer per call, the last one repeated."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    async def resolve(self, host, port=0, family=socket.AF_INET):
        self.calls.append((host, port))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=socket.IPPROTO_TCP,
                flags=socket.AI_NUMERICHOST,
            )
            for address in answer
        ]

    async def close(self):
        pass


def resolve(resolver, host, port=443):
    return run(resolver.resolve(host, port))


def test_resolver_passes_a_name_with_public_addresses():
    stub = StubResolver(["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
    results = resolve(GuardedResolver(NOTHING, stub), "board.example")
    assert [r["host"] for r in results] == ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    assert stub.calls == [("board.example", 443)]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback address 127.0.0.1"),
        ("10.0.0.1", "private address 10.0.0.1"),
        ("169.254.169.254", "cloud metadata address 169.254.169.254"),
        ("::1", "loopback address ::1"),
        ("::ffff:127.0.0.1", "IPv4-mapped address ::ffff:7f00:1 embeds loopback address 127.0.0.1"),
        ("100.100.100.200", "cloud metadata address 100.100.100.200"),
        ("fd00:ec2::254", "cloud metadata address fd00:ec2::254"),
    ],
)
def test_resolver_refuses_a_name_resolving_to_a_forbidden_address(address, reason):
    with pytest.raises(Refused) as caught:
        resolve(GuardedResolver(NOTHING, StubResolver([address])), "evil.example")
    assert caught.value.reason == f"host 'evil.example' resolves to {reason}"
    assert caught.value.url == "evil.example:443"


def test_resolver_checks_every_resolution_dns_rebinding():
    stub = StubResolver(["93.184.216.34"], ["127.0.0.1"])
    resolver = GuardedResolver(NOTHING, stub)
    assert [r["host"] for r in resolve(resolver, "rebind.example")] == ["93.184.216.34"]
    with pytest.raises(Refused, match=re.escape("loopback address 127.0.0.1")):
        resolve(resolver, "rebind.example")
    assert len(stub.calls) == 2


def test_resolver_refuses_the_host_when_any_answer_is_forbidden():
    stub = StubResolver(["93.184.216.34", "10.0.0.7"])
    with pytest.raises(Refused, match=re.escape("private address 10.0.0.7")):
        resolve(GuardedResolver(NOTHING, stub), "mixed.example")


def test_resolution_failure_is_refused():
    failure = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    with pytest.raises(Refused) as caught:
        resolve(GuardedResolver(NOTHING, StubResolver(failure)), "nowhere.example")
    assert caught.value.reason.startswith("host 'nowhere.example' does not resolve")
    assert caught.value.__cause__ is failure
    with pytest.raises(Refused, match="does not resolve"):
        resolve(GuardedResolver(NOTHING, StubResolver([])), "empty.example")


def test_resolver_lets_timeouts_through_as_timeouts():
    with pytest.raises(TimeoutError) as caught:
        resolve(GuardedResolver(NOTHING, StubResolver(TimeoutError())), "slow.example")
    assert not isinstance(caught.value, Refused)


def test_resolver_returns_allowlisted_host_port_as_is():
    allowlist = Allowlist.parse(["intranet.test:8080"])
    stub = StubResolver(["10.0.0.5"])
    results = resolve(GuardedResolver(allowlist, stub), "intranet.test", 8080)
    assert [r["host"] for r in results] == ["10.0.0.5"]
    with pytest.raises(Refused, match=re.escape("private address 10.0.0.5")):
        resolve(GuardedResolver(allowlist, stub), "intranet.test", 8081)


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "localhost"])
def test_default_resolver_refuses_what_getaddrinfo_reads_as_loopback(host):
    # numeric hosts and /etc/hosts: getaddrinfo answers them without DNS
    with pytest.raises(Refused, match=re.escape("loopback address 127.0.0.1")):
        resolve(GuardedResolver(NOTHING), host, 80)


# --- url_refusal: both checks at once, resolving now --------------------------------------------


def answering(monkeypatch, *addresses: str) -> list[tuple]:
    """getaddrinfo (DNS: outside our walls) answers `addresses`; returns the lookups made."""
    calls = []

    def getaddrinfo(host, port, *args, **kwargs):
        calls.append((host, port))
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


def test_url_refusal_names_a_forbidden_resolved_address(monkeypatch):
    calls = answering(monkeypatch, "93.184.216.34", "fe80::1%eth0", "10.0.0.7")
    reason = url_refusal("https://hooks.example/in", allowlist=NOTHING)
    assert reason == "host 'hooks.example' resolves to link-local address fe80::1"
    assert calls == [("hooks.example", 443)]


def test_url_refusal_lets_public_names_and_names_not_resolving_yet_through(monkeypatch):
    answering(monkeypatch, "93.184.216.34")
    assert url_refusal("https://hooks.example/in", allowlist=NOTHING) is None
    answering(monkeypatch)  # does not resolve: judged again at connect time
    assert url_refusal("https://later.example/in", allowlist=NOTHING) is None


def test_url_refusal_refuses_what_check_url_refuses_without_dns(monkeypatch):
    calls = answering(monkeypatch, "93.184.216.34")
    assert url_refusal("ftp://hooks.example/", allowlist=NOTHING) == (
        "scheme 'ftp' is not http or https"
    )
    assert url_refusal("http://127.1/", allowlist=NOTHING) == "loopback address 127.0.0.1"
    assert calls == []


def test_url_refusal_resolves_for_real_and_skips_allowlisted_hosts():
    # /etc/hosts answers localhost without DNS (127.0.0.1 or ::1, whichever comes first)
    reason = url_refusal("http://localhost:8765/", allowlist=NOTHING) or ""
    assert reason.startswith("host 'localhost' resolves to loopback address ")
    allowlist = Allowlist.parse(["localhost:8765"])
    assert url_refusal("http://localhost:8765/", allowlist=allowlist) is None


def test_guarded_connector_resolves_through_the_guard_uncached():
    async def build():
        stub = StubResolver(["10.0.0.1"])
        connector = guarded_connector(allowlist=NOTHING, base_resolver=stub, limit=3)
        try:
            return connector, stub
        finally:
            await connector.close()

    connector, stub = run(build())
    assert isinstance(connector, aiohttp.TCPConnector)
    assert isinstance(connector._resolver, GuardedResolver)
    assert connector._resolver._base is stub
    assert connector.use_dns_cache is False
    assert connector.limit == 3


def test_refusal_of_finds_the_refused_or_nothing():
    refused = Refused("x", "loopback address 127.0.0.1")
    assert refusal_of(refused) is refused
    outer = aiohttp.ClientError("wrapped")
    outer.__cause__ = refused
    assert refusal_of(outer) is refused
    inner = OSError("while handling")
    inner.__context__ = refused
    assert refusal_of(aiohttp.ClientOSError("outer")) is None
    outer_os = aiohttp.ClientOSError("outer")
    outer_os.__context__ = inner
    assert refusal_of(outer_os) is refused
    assert refusal_of(ValueError("nope")) is None
    assert refusal_of(ConnectionRefusedError(111, "Connection refused")) is None
    assert refusal_of(BaseExceptionGroup("many", [ValueError(), refused])) is refused


# --- through a real aiohttp client and server --------------------------------------------------


@contextlib.asynccontextmanager
async def local_board():
    """A notice board on 127.0.0.1; yields (port, hosts of the requests it served)."""
    served = []

    async def notices(request):
        served.append(request.host)
        return web.Response(text="notice board")

    app = web.Application()
    app.router.add_get("/", notices)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1], served
    finally:
        await runner.cleanup()


async def fetch(url, allowlist, base_resolver=None):
    """GET url through the guarded connector; (status, body) or the exception raised."""
    connector = guarded_connector(
        allowlist=allowlist, base_resolver=base_resolver, force_close=True
    )
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        try:
            async with session.get(url, allow_redirects=False) as response:
                return response.status, await response.text()
        except aiohttp.ClientError as exc:
            return exc


def test_allowlisted_local_board_is_fetched():
    async def scenario():
        async with local_board() as (port, served):
            allowlist = Allowlist.parse([f"127.0.0.1:{port}"])
            url = check_url(f"http://127.0.0.1:{port}/", allowlist=allowlist)
            return await fetch(url, allowlist), served

    outcome, served = run(scenario())
    assert outcome == (200, "notice board")
    assert len(served) == 1


def test_localhost_is_refused_by_the_resolver_inside_aiohttp():
    async def scenario():
        async with local_board() as (port, served):
            allowlist = Allowlist.parse([f"127.0.0.1:{port}"])
            url = check_url(f"http://localhost:{port}/", allowlist=allowlist)  # a name: passes
            return await fetch(url, allowlist), served

    outcome, served = run(scenario())
    assert isinstance(outcome, aiohttp.ClientConnectorError)
    refused = refusal_of(outcome)
    assert refused is not None
    assert refused.reason == "host 'localhost' resolves to loopback address 127.0.0.1"
    assert refused.reason in str(outcome)
    assert served == []


def test_decimal_loopback_is_refused_with_or_without_check_url():
    async def scenario():
        async with local_board() as (port, served):
            reason = refused_reason(f"http://2130706433:{port}/")
            # bypassing check_url: aiohttp refuses the all-digit form itself (not a canonical
            # IPv4 address) or hands it to the resolver; either way nothing is fetched
            decimal = await fetch(f"http://2130706433:{port}/", NOTHING)
            hexadecimal = await fetch(f"http://0x7f000001:{port}/", NOTHING)
            return reason, decimal, hexadecimal, served

    reason, decimal, hexadecimal, served = run(scenario())
    assert reason == "loopback address 127.0.0.1"
    assert isinstance(decimal, aiohttp.ClientError)
    decimal_refusal = refusal_of(decimal)
    assert isinstance(decimal, aiohttp.InvalidUrlClientError) or (
        decimal_refusal is not None and "loopback address 127.0.0.1" in decimal_refusal.reason
    )
    # hex is not an IP for aiohttp: it goes to the resolver, where getaddrinfo reads 127.0.0.1
    hex_refusal = refusal_of(hexadecimal)
    assert hex_refusal is not None
    assert hex_refusal.reason == "host '0x7f000001' resolves to loopback address 127.0.0.1"
    assert served == []


def test_every_connection_is_resolved_and_checked_again():
    async def scenario():
        async with local_board() as (port, served):
            allowlist = Allowlist.parse([f"board.test:{port}"])
            stub = StubResolver(["127.0.0.1"])
            first = await fetch(f"http://board.test:{port}/", allowlist, stub)
            second = await fetch(f"http://board.test:{port}/", allowlist, stub)
            other = Allowlist.parse([f"board.test:{port + 1}"])
            refused = await fetch(f"http://board.test:{port}/", other, stub)
            return first, second, refused, stub.calls, served

    first, second, refused, calls, served = run(scenario())
    assert first == second == (200, "notice board")
    assert len(calls) == 3
    assert "loopback address 127.0.0.1" in refusal_of(refused).reason
    assert len(served) == 2


def test_refusal_of_is_none_for_an_ordinary_connection_failure():
    async def scenario():
        with socket.socket() as bound:  # bound, never listening: connections are refused
            bound.bind(("127.0.0.1", 0))
            port = bound.getsockname()[1]
            allowlist = Allowlist.parse([f"127.0.0.1:{port}"])
            return await fetch(f"http://127.0.0.1:{port}/", allowlist)

    outcome = run(scenario())
    assert isinstance(outcome, aiohttp.ClientConnectorError)
    assert refusal_of(outcome) is None
