"""Requests the crawler sends: a plain GET of a URL, or a request built from a template (a POST
form of a government board, a JSON API's paged query).

A ``Request`` is what the frontier stores and the fetcher sends. Templates fill ``{name}``
placeholders from a mapping (``fill``): pagination state (``{page}``, ``{offset}``, ``{limit}``,
``{cursor}``), a pattern's groups (``{1}``…``{9}``). ``{secret.NAME}`` placeholders are left as
they are until the moment of sending (``resolve``), so a source's secrets never reach the
frontier, events or logs; ``redact`` puts the placeholder back into any text that may hold a
secret's value (an error message, a redirect's URL).

The identity of a request (``request_hash``) is its method, canonical URL and body: a plain GET
hashes exactly like its URL did before requests existed, so older frontiers and bids keep their
keys. Pure Python (no Django).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from crawls.engine import urls

METHODS = ("GET", "POST")
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# {name}, {1}, {secret.NAME}; "{{" and "}}" stand for literal braces.
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?|\d)\}")
# Headers the fetcher owns, which rules may not set: the connection's, the body's type (set by a
# form or JSON body) and cookies.
OWN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "content-type", "cookie"}
)
SECRET_PREFIX = "secret."  # noqa: S105 - a placeholder prefix, not a secret


@dataclass(frozen=True, slots=True)
class Request:
    """One request. `url` is canonical and absolute; secrets are still placeholders."""

    url: str
    method: str = "GET"
    body: str = ""
    content_type: str = ""  # of the body: FORM or JSON; empty without a body
    headers: tuple[tuple[str, str], ...] = ()
    # Pagination state carried from one page's request to the next ({"page": 2}); JSON values.
    context: Mapping[str, object] = field(default_factory=dict)

    @property
    def is_plain_get(self) -> bool:
        return self.method == "GET" and not self.body and not self.headers and not self.context

    def to_json(self) -> dict[str, object] | None:
        """The frontier's `request` column: None for a plain GET (the URL says it all)."""
        if self.is_plain_get:
            return None
        data: dict[str, object] = {"method": self.method}
        if self.body:
            data["body"] = self.body
            data["content_type"] = self.content_type
        if self.headers:
            data["headers"] = [list(pair) for pair in self.headers]
        if self.context:
            data["context"] = dict(self.context)
        return data

    @classmethod
    def from_json(cls, url: str, data: Mapping[str, Any] | str | None) -> Request:
        """The request of a frontier row (`data` as the column gives it: a mapping, or its
        JSON text when read through a raw cursor)."""
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, Mapping) or not data:
            return cls(url)
        return cls(
            url=url,
            method=str(data.get("method", "GET")),
            body=str(data.get("body", "")),
            content_type=str(data.get("content_type", "")),
            headers=tuple((str(k), str(v)) for k, v in data.get("headers", ())),
            context=dict(data.get("context") or {}),
        )

    def describe(self) -> str:
        """How events and logs name the request: "POST https://…/view.do nttId=123"."""
        if self.method == "GET" and not self.body:
            return self.url
        body = self.body if len(self.body) <= 200 else self.body[:197] + "..."
        return f"{self.method} {self.url} {body}".rstrip()


def request_hash(request: Request) -> bytes:
    """16-byte identity of a request: its URL's hash for a body-less GET, else method, URL
    and body together (headers and context do not make a request another one)."""
    if request.method == "GET" and not request.body:
        return urls.url_hash(request.url)
    key = f"{request.method}\n{request.url}\n{request.content_type}\n{request.body}"
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()


def item_hash(key: str) -> bytes:
    """Identity of an item read from an API response (its key, not a URL)."""
    return hashlib.blake2b(f"key\n{key}".encode(), digest_size=16).digest()


class TemplateError(ValueError):
    """A placeholder with no value."""


def fill(template: str, values: Mapping[str, object], *, quote_values: bool = False) -> str:
    """`template` with its {name} placeholders replaced from `values`; {secret.*} kept as they
    are. TemplateError names a placeholder that has no value. With quote_values, values are
    percent-encoded (for a URL's path or query written by hand)."""

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        if found in ("{{", "}}"):
            return found[0]
        name = match.group(1)
        if name.startswith(SECRET_PREFIX):
            return found
        if name not in values or values[name] is None:
            raise TemplateError(f"no value for {{{name}}}")
        text = _text(values[name])
        return quote(text, safe="") if quote_values else text

    return PLACEHOLDER.sub(replace, template)


def placeholders(template: str) -> set[str]:
    """The names a template uses ({page} → "page", {secret.key} → "secret.key")."""
    return {m.group(1) for m in PLACEHOLDER.finditer(template) if m.group(1)}


def form_body(fields: Mapping[str, object]) -> str:
    """A form body (application/x-www-form-urlencoded) from filled fields, in the given order."""
    return urlencode([(k, _text(v)) for k, v in fields.items()])


def json_body(value: object) -> str:
    """A JSON body, compact and with sorted keys (so equal bodies are equal strings)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class MissingSecret(LookupError):
    """A request names a secret the source does not have."""


_ENCODED_SECRET = re.compile(r"%7B(secret\.[A-Za-z_][A-Za-z0-9_]*)%7D", re.IGNORECASE)


def resolve(text: str, secrets: Mapping[str, str]) -> str:
    """`text` with the source's secret values in place of its placeholders (at send time only).

    ``{secret.NAME}`` (a header, a JSON body) takes the value as it is; the percent-encoded
    placeholder that a canonical URL or a form body holds takes it percent-encoded, leaving
    an already encoded value (``abc%2B%3D``, as open-data portals hand them out) as it is."""
    if "secret." not in text:
        return text

    def value_of(name: str) -> str:
        key = name[len(SECRET_PREFIX) :]
        if key not in secrets:
            raise MissingSecret(f"the source has no secret named {key!r}")
        return str(secrets[key])

    def raw(match: re.Match[str]) -> str:
        name = match.group(1)
        if not name or not name.startswith(SECRET_PREFIX):
            return match.group(0)
        return value_of(name)

    text = _ENCODED_SECRET.sub(lambda m: quote(value_of(m.group(1)), safe="%"), text)
    return PLACEHOLDER.sub(raw, text)


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """`text` with every secret's value (raw or percent-encoded) put back as its placeholder."""
    for name, value in secrets.items():
        value = str(value)
        if len(value) < 4:  # too short to be a secret worth hiding, too common to replace
            continue
        for form in {value, quote(value, safe=""), quote(value, safe="/"), quote(value)}:
            text = text.replace(form, f"{{secret.{name}}}")
    return text


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
