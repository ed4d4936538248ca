"""Read one fetched page with its Rules: links to follow, item links, typed field values.

A follow/items entry is a selector (links by href, the fast path) or an object that builds
links and requests from any attribute (crawls.engine.html_requests); field values are typed by
crawls.engine.values. A field `amount` whose text names a currency ("1,000원", "KRW 5") sets
`currency` when the rules have no currency field of their own.

Built on selectolax's lexbor parser: one parse per page and one ``css_first`` per field; regexes
are compiled with the rules and date formats once per process. A page is read under a deadline,
checked between steps (fields, link selectors, every few hundred nodes): past it, extract()
stops and names the step in ``Page.timeout``. Pure Python (no Django).
"""

from __future__ import annotations

import codecs
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urljoin, urlsplit
from zoneinfo import ZoneInfo

from selectolax.lexbor import LexborHTMLParser

from crawls.engine import html_requests, normalize
from crawls.engine.link_rules import LinkRule
from crawls.engine.request import Request, request_hash
from crawls.engine.rules import FieldRule, Rules
from crawls.engine.values import DATE_FORMATS as DATE_FORMATS  # re-exported
from crawls.engine.values import DATETIME_FORMATS as DATETIME_FORMATS  # re-exported
from crawls.engine.values import convert

_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
# Further than the standard's 1024 bytes: long <head>s on Korean boards declare their charset late.
_CHARSET_SCAN = 4096
# What browsers (WHATWG Encoding) actually decode these labels as: EUC-KR pages routinely
# contain CP949-only syllables (e.g. 똠), which Python's strict euc_kr codec would mangle.
_CODEC_FOR = {
    "euc_kr": "cp949",
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "shift_jis": "cp932",
}
_KOREAN_LABELS = frozenset(
    {"csksc56011987", "iso-ir-149", "ks_c_5601-1989", "ksc_5601", "windows-949", "x-windows-949"}
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# Attributes holding a URL: their values are resolved like a browser would (an attachment's href).
_URL_ATTRS = frozenset({"href", "src", "action", "formaction", "poster", "cite", "data"})
# Nodes between two looks at the clock while collecting links.
_NODES_PER_CHECK = 256
PARSE_STEP = "page"  # the step name of parsing the page (before links and fields)
LINKS_STEP = "links"


@dataclass
class Record:
    """An item read off a page itself (an API's response lists many): its key, its fields."""

    key: str  # unique within the source (an API's notice number, an OCDS ocid)
    fields: dict[str, object]
    errors: dict[str, str] = field(default_factory=dict)
    url: str = ""  # a link to the notice, if the source gives one
    version: str = ""  # the publisher's version (OCDS: release date and id); "" if none
    # Only the fields the publisher gave this time: the others keep their stored values.
    partial: bool = False


@dataclass
class Page:
    """What reading one page found (extract() for HTML, the other kinds' readers alike)."""

    follow: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    fields: dict[str, object] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    canonical: str | None = None
    # The step ("page", "links" or a field's name) running when the deadline passed; else None.
    timeout: str | None = None
    # Requests built from templates: more listing pages (pagination, POST forms) and items.
    requests: list[Request] = field(default_factory=list)
    item_requests: list[Request] = field(default_factory=list)
    # Items read off the page itself (json, xml, ocds), in the order they are to be applied.
    records: list[Record] = field(default_factory=list)
    # The publisher's error message (an API's error envelope): the crawl fails with it.
    error: str | None = None


class _OutOfTime(Exception):
    def __init__(self, step: str):
        super().__init__(step)
        self.step = step


class _Clock:
    """The steps of one extract() call and its deadline (time.monotonic(); None: no deadline)."""

    __slots__ = ("deadline", "on_step", "step")

    def __init__(self, deadline: float | None, on_step: Callable[[str], None] | None) -> None:
        self.deadline = deadline
        self.on_step = on_step
        self.step = PARSE_STEP

    def check(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise _OutOfTime(self.step)

    def enter(self, step: str) -> None:
        """Check the clock (blaming the step that just ran), then start `step`."""
        self.check()
        self.step = step
        if self.on_step is not None:
            self.on_step(step)


def extract(
    html: bytes | str,
    *,
    url: str,
    rules: Rules,
    want_links: bool = True,
    want_fields: bool = True,
    deadline: float | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Page:
    """Parse a page once and read its links and/or fields according to rules.

    Past `deadline` (a time.monotonic() value) it stops and names the running step in
    Page.timeout; `on_step` is told each step's name as it starts (see crawls.engine.sandbox).
    """
    clock = _Clock(deadline, on_step)
    page = Page()
    try:
        if on_step is not None:
            on_step(PARSE_STEP)
        _extract(html, url, rules, want_links, want_fields, clock, page)
    except _OutOfTime as out:
        page.timeout = out.step
    return page


def _extract(
    html: bytes | str,
    url: str,
    rules: Rules,
    want_links: bool,
    want_fields: bool,
    clock: _Clock,
    page: Page,
) -> None:
    text, encoding = _decode(html) if isinstance(html, bytes) else (html, "utf-8")
    tree = LexborHTMLParser(text)
    base = _Base(url)
    if (node := tree.css_first("base[href]")) is not None and (
        href := _absolute(node.attrs.get("href"), base)
    ):
        base = _Base(href)
    if (node := tree.css_first("link[rel~=canonical i][href]")) is not None:
        page.canonical = _absolute(node.attrs.get("href"), base)
    if want_links and (rules.follow or rules.items):
        clock.enter(LINKS_STEP)
        builder = html_requests.Builder(
            tree,
            page_url=base.url.partition("#")[0],
            resolve=lambda href: _absolute(href, base),
            ignore_params=rules.ignore_params,
            check=clock.check,
            encoding=encoding,
        )
        page.follow, page.requests = _entries(tree, "follow", rules.follow, base, builder, page)
        page.items, page.item_requests = _entries(tree, "items", rules.items, base, builder, page)
    if want_fields:
        page.fields = {}
        amount_text = None
        for name, rule in rules.fields.items():
            clock.enter(name)
            value, problem, raw = _read(tree, rule, rules.timezone, base)
            page.fields[name] = value
            if problem is not None:
                page.errors[name] = problem
            if name == "amount" and value is not None:
                amount_text = raw
        if "currency" not in rules.fields and (code := normalize.currency_code(amount_text)):
            page.fields["currency"] = code  # "4,477,000,000 KRW", "1,000원"
    clock.check()


def _entries(
    tree: LexborHTMLParser,
    key: str,
    entries: tuple[str | LinkRule, ...],
    base: _Base,
    builder: html_requests.Builder,
    page: Page,
) -> tuple[list[str], list[Request]]:
    """The links (first seen first) and requests (by request_hash, first seen first) of the
    follow or items entries; an entry that cannot be built here is named in page.errors."""
    if all(isinstance(entry, str) for entry in entries):  # the fast path: links by href
        return _links(tree, entries, base, builder.check), []  # type: ignore[arg-type]
    links: dict[str, None] = {}
    requests: dict[bytes, Request] = {}
    for index, entry in enumerate(entries):
        builder.check()
        if isinstance(entry, str):
            links.update(dict.fromkeys(_links(tree, (entry,), base, builder.check)))
            continue
        try:
            for found in builder.results(entry):
                if isinstance(found, str):
                    links[found] = None
                else:
                    requests.setdefault(request_hash(found), found)
        except html_requests.BuildError as exc:
            page.errors[f"{key}[{index}]"] = str(exc)
    return list(links), list(requests.values())


def _read(
    tree: LexborHTMLParser, rule: FieldRule, tz: ZoneInfo, base: _Base
) -> tuple[object, str | None, str | None]:
    """One field's value, problem (None when fine) and raw text."""
    node = tree.css_first(rule.css)
    if node is None:
        raw = None
        why = f"nothing matches {rule.css!r}"
    elif rule.attr is not None:
        raw = node.attrs.get(rule.attr)
        why = f"{rule.css!r} has no {rule.attr!r} attribute"
        if raw and rule.attr in _URL_ATTRS and raw.strip():
            with contextlib.suppress(ValueError):  # unresolvable: keep what the page says
                raw = base.join(raw.strip())[0]
    else:
        raw = node.text()
        why = f"{rule.css!r} is empty"
    if raw is None or not raw.strip():
        problem = f"required field {rule.name} not found: {why}" if rule.required else None
        return None, problem, raw
    try:
        value = convert(raw, rule, tz)
    except ValueError as exc:
        return None, str(exc), raw
    if value == "":
        return None, (f"required field {rule.name} is empty" if rule.required else None), raw
    return value, None, raw


def _links(
    tree: LexborHTMLParser, selectors: tuple[str, ...], base: _Base, check: Callable[[], None]
) -> list[str]:
    """Absolute http(s) URLs the selectors point at, without fragments, first seen first."""
    links: dict[str, None] = {}
    for selector in selectors:
        check()
        for count, node in enumerate(tree.css(selector), 1):
            if count % _NODES_PER_CHECK == 0:
                check()
            href = node.attrs.get("href")
            if href is None and (inner := node.css_first("a[href]")) is not None:
                # A selector may name the cell (td.subject) rather than its <a>.
                href = inner.attrs.get("href")
            if (link := _absolute(href, base)) is not None:
                links[link] = None
    return list(links)


class _Base:
    """A page's base URL, split once: urljoin takes microseconds a link, listings have many."""

    __slots__ = ("directory", "origin", "path", "url")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        # Empty when the base is not an http(s) URL with a host: then urljoin does all the work.
        self.origin = f"{parts.scheme}://{parts.netloc}" if _is_web(parts) else ""
        self.path = parts.path or "/"
        self.directory = self.path[: self.path.rfind("/") + 1]

    def join(self, ref: str) -> tuple[str, bool]:
        """ref resolved (RFC 3986) without its fragment, and whether it kept the base's host."""
        ref = ref.partition("#")[0]
        if not ref:
            return self.url.partition("#")[0], True
        if not self.origin or _SCHEME.match(ref) or ref.startswith(("//", "\\")):
            return urljoin(self.url, ref).partition("#")[0], False
        path, mark, query = ref.partition("?")
        if not path:
            path = self.path
        elif path[0] != "/":
            path = self.directory + path
        if "/." in path:
            path = _remove_dot_segments(path)
        return f"{self.origin}{path}{mark}{query}", True


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4 for an absolute path: /a/./b/../c → /a/c."""
    segments = path.split("/")
    kept: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    result = "/" + "/".join(kept)
    if segments[-1] in (".", "..") and not result.endswith("/"):
        result += "/"
    return result


def _is_web(parts: SplitResult) -> bool:
    """An http(s) URL with a valid host and port (reading the port validates it)."""
    try:
        return (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and (parts.port is None or parts.port > 0)
        )
    except ValueError:  # a port that is not a number or out of range
        return False


def _absolute(href: str | None, base: _Base) -> str | None:
    """href resolved against base, without fragment; None unless it is an http(s) URL."""
    if not href:
        return None
    # Browsers strip surrounding whitespace and drop tabs/newlines anywhere in a URL.
    href = href.strip().replace("\t", "").replace("\n", "").replace("\r", "")
    if not href or href.startswith("#"):
        return None
    try:
        url, same_host = base.join(href)
        if not same_host and not _is_web(urlsplit(url)):
            return None
    except ValueError:  # an unclosed IPv6 bracket, a port that is not a number
        return None
    return url


def _decode(html: bytes) -> tuple[bytes | str, str]:
    """Bytes as lexbor should read them (UTF-8 bytes as they are, anything else as text), and
    the codec the page's forms submit in (browsers encode form data in the page's charset)."""
    if html.startswith(codecs.BOM_UTF8):
        return html[3:], "utf-8"
    if html.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return html.decode("utf-16", "replace"), "utf-8"  # forms never submit UTF-16
    match = _CHARSET.search(html, 0, _CHARSET_SCAN)
    if match is None:
        return html, "utf-8"  # lexbor reads UTF-8 and replaces invalid bytes with U+FFFD
    label = match.group(1).decode("ascii").lower()
    if label in _KOREAN_LABELS:
        return html.decode("cp949", "replace"), "cp949"
    try:
        info = codecs.lookup(label)
    except LookupError:
        return html, "utf-8"
    # utf-16/32 labels in a byte stream that parsed this far are lies; the standard says UTF-8.
    if not getattr(info, "_is_text_encoding", True) or info.name.startswith("utf"):
        return html, "utf-8"
    codec = _CODEC_FOR.get(info.name, info.name)
    return html.decode(codec, "replace"), codec
