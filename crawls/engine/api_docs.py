"""Documents of JSON and XML API responses: the body parsed (JSON nested past MAX_DEPTH and XML
declaring entities or a DTD refused unread) and paths evaluated on it (JMESPath for JSON, XPath
1.0 for XML), plus the scalar helpers the reader shares (a value as text, a URL made absolute).
Pure Python (no Django).
"""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import urljoin, urlsplit

import jmespath.exceptions  # type: ignore[import-untyped]
from lxml import etree  # type: ignore[import-untyped]

from crawls import bounds
from crawls.engine import api_paths, rule_checks, urls, xmlsafe

MAX_DEPTH = 64  # JSON responses nested deeper are refused (json.loads recurses per level)


class Unreadable(ValueError):
    """The body cannot be read as the rules' kind."""


class JsonDoc:
    """A JSON document; paths are JMESPath."""

    def __init__(self, root: object) -> None:
        self.root = root

    def search(self, path: str, node: object) -> object:
        try:
            return api_paths.jmespath_compiled(path).search(node)
        except jmespath.exceptions.JMESPathError as exc:
            raise ValueError(f"{path!r} cannot be read: {' '.join(str(exc).split())}") from None

    def items(self, path: str) -> list[object]:
        found = self.search(path, self.root)
        if found is None or found == "":  # data.go.kr writes "items": "" for no items
            return []
        if isinstance(found, list):
            return found
        if isinstance(found, dict):
            return [found]  # a list of one written as the item itself (XML turned JSON)
        raise ValueError(f"items path {path!r} gives {kind_of(found)}, not a list of items")

    def one(self, path: str, node: object) -> object:
        found = self.search(path, node)
        if isinstance(found, list):
            values = [value for value in found if value is not None and value != ""]
            if len(values) > 1:
                raise ValueError(
                    f"{path!r} gives {len(values)} values; pick one, such as {path}[0]"
                )
            found = values[0] if values else None
        if isinstance(found, dict):
            raise ValueError(f"{path!r} gives an object, not a value; name one of its keys")
        return found

    def many(self, path: str, node: object) -> list[object]:
        found = self.search(path, node)
        if found is None:
            return []
        return found if isinstance(found, list) else [found]


class XmlDoc:
    """An XML document; paths are XPath 1.0."""

    def __init__(self, root: etree._Element) -> None:
        self.root = root

    def search(self, path: str, node: object) -> object:
        try:
            return api_paths.xpath_compiled(path)(node)
        except etree.XPathError as exc:
            raise ValueError(f"{path!r} cannot be read: {exc}") from None

    def items(self, path: str) -> list[object]:
        found = self.search(path, self.root)
        if not isinstance(found, list) or not all(isinstance(n, etree._Element) for n in found):
            raise ValueError(f"items path {path!r} must select elements, not {kind_of(found)}")
        return list(found)

    def one(self, path: str, node: object) -> object:
        found = self.search(path, node)
        if isinstance(found, list):
            found = found[0] if found else None
        return _xml_value(found)

    def many(self, path: str, node: object) -> list[object]:
        found = self.search(path, node)
        values = found if isinstance(found, list) else [found]
        return [_xml_value(value) for value in values]


def _xml_value(found: object) -> object:
    if isinstance(found, etree._Element):
        return "".join(found.itertext())
    if isinstance(found, float):  # count(), number(): NaN when there is nothing
        if found != found:
            return None
        return int(found) if found.is_integer() else Decimal(repr(found))
    if isinstance(found, bool):
        return "true" if found else "false"
    return None if found is None else str(found)


Doc = JsonDoc | XmlDoc


def parse(body: bytes, kind: str) -> Doc:
    """The body as the rules' kind of document; Unreadable when it is none."""
    if kind == api_paths.XML:
        try:
            return XmlDoc(xmlsafe.parse(body))
        except xmlsafe.XmlError as exc:
            raise Unreadable(str(exc)) from None
    try:
        bounds.text_check_depth(body, MAX_DEPTH)
    except bounds.TooDeep as exc:
        raise Unreadable(f"not read: {exc}") from None
    try:
        try:
            return JsonDoc(json.loads(body, parse_float=Decimal, parse_constant=_no_constant))
        except UnicodeDecodeError:
            # Korean APIs serve EUC-KR JSON now and then; JSON is UTF-8 everywhere else.
            text = body.decode("cp949")
            return JsonDoc(json.loads(text, parse_float=Decimal, parse_constant=_no_constant))
    except UnicodeDecodeError:
        raise Unreadable("not JSON: neither UTF-8 nor EUC-KR text") from None
    except ValueError as exc:
        raise Unreadable(f"not JSON: {exc}; the body begins {_begins(body)}") from None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


def _begins(body: bytes) -> str:
    text = " ".join(body[:200].decode("utf-8", "replace").split())
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


def text(value: object) -> str:
    """A scalar as text; "" for nothing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict | list):
        raise ValueError(f"expected a value, not {kind_of(value)}")
    return " ".join(str(value).split())


def kind_of(value: object) -> str:
    if isinstance(value, etree._Element):
        return "an element"
    if isinstance(value, Decimal):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    return rule_checks.kind(value)


def absolute(ref: str, base: str) -> str | None:
    """ref resolved against base and canonicalised; None unless an http(s) URL."""
    if not ref:
        return None
    try:
        resolved = urljoin(base, ref.strip())
        parts = urlsplit(resolved)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        return urls.canonicalize(resolved)
    except ValueError:
        return None
