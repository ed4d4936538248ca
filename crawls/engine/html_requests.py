"""Links and requests built from a page's elements by a `follow` / `items` object entry
(crawls.engine.link_rules): an onclick's argument through a regex, a <form>'s fields.

For each element the selector matches: its attribute (or text, with attr "text"), searched
with the regex ({0} the match, {1}..{9} its groups); no match, no request. Without a request
template the value ({1} if the regex has a group) is a link. With one, the template is filled:
its URL resolved against the page and canonicalised; with ``from_form``, the form's action,
method and successful controls (as a browser submits them: hidden/text inputs, checked
checkboxes and radios, selected options, textareas; not buttons, not disabled ones), then
``form`` overrides; POST sends them as a form body, GET in the query, encoded in the page's
charset as browsers do (an EUC-KR board reads its forms' Korean in CP949).

A result that is a plain GET (no body, no headers) is a URL string (Page.follow / Page.items,
like a link by href: the same identity in the frontier); anything else a ``Request``
(Page.requests / Page.item_requests). Pure Python (no Django).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

from selectolax.lexbor import LexborHTMLParser, LexborNode

from crawls.engine import request, urls
from crawls.engine.link_rules import TEXT_ATTR, LinkRule, RequestTemplate
from crawls.engine.request import Request

# Elements between two looks at the clock: each may cost a regex, a fill and a canonicalize.
NODES_PER_CHECK = 64
_CANONICAL_CACHE = 1024
_NOT_SUBMITTED = frozenset({"submit", "button", "image", "reset", "file"})


@dataclass(frozen=True)
class Form:
    """What a <form> submits as it stands: where, how, and its successful controls in order."""

    action: str
    method: str
    fields: tuple[tuple[str, str], ...]


class BuildError(ValueError):
    """An entry cannot be built on this page (its form is missing); said once per entry."""


class Builder:
    """Builds one page's links and requests. `resolve` turns an href into an absolute http(s)
    URL without fragment (None when it is not one), as the page's links are resolved."""

    def __init__(
        self,
        tree: LexborHTMLParser,
        *,
        page_url: str,
        resolve: Callable[[str | None], str | None],
        ignore_params: Iterable[str],
        check: Callable[[], None],
        encoding: str = "utf-8",
    ) -> None:
        self.tree = tree
        self.page_url = page_url
        self.resolve = resolve
        self.ignore_params = tuple(ignore_params)
        self.check = check
        self.encoding = encoding  # of form fields, as the page's browser would submit them
        self._forms: dict[str, Form | None] = {}
        self._canonical: dict[str, str | None] = {}

    def results(self, rule: LinkRule) -> Iterator[str | Request]:
        """The links and requests of one entry, in document order (duplicates included)."""
        for count, node in enumerate(self.tree.css(rule.css), 1):
            if count % NODES_PER_CHECK == 0:
                self.check()
            values = self.values(node, rule)
            if values is None:
                continue
            if rule.request is None:
                link = self.resolve(values["1"] if "1" in values else values["0"])
                if link is not None:
                    yield link
            elif (built := self.build(rule.request, values)) is not None:
                yield built

    def values(self, node: LexborNode, rule: LinkRule) -> dict[str, str] | None:
        """The placeholders' values for one element, or None when it gives none."""
        raw: str | None
        if rule.attr == TEXT_ATTR:
            raw = " ".join(node.text().split())
        else:
            raw = node.attrs.get(rule.attr)
            if raw is None and rule.attr == "href":
                # A selector may name the cell (td.subject) rather than its <a>.
                inner = node.css_first("a[href]")
                raw = inner.attrs.get("href") if inner is not None else None
        if raw is None or not raw.strip():
            return None
        raw = raw.strip()
        if rule.regex is None:
            return {"0": raw}
        match = rule.regex.search(raw)
        if match is None:
            return None
        values = {"0": match.group(0)}
        for group in range(1, rule.regex.groups + 1):
            values[str(group)] = match.group(group) or ""
        return values

    def build(self, template: RequestTemplate, values: dict[str, str]) -> str | Request | None:
        """One filled request (a URL string for a plain GET); None when its URL is not a web
        page's. BuildError when its form is not on the page."""
        form = None
        if template.from_form is not None:
            form = self.form(template.from_form)
            if form is None:
                raise BuildError(f"no form matches {template.from_form!r} on this page")
        method = template.method or (form.method if form is not None else "GET")
        if template.url is not None:
            url = self.resolve(request.fill(template.url, values, quote_values=True))
        else:
            url = form.action if form is not None else self.page_url
        if url is None:
            return None
        fields = _overridden(
            form.fields if form is not None else (), _filled(template.form, values)
        )
        query = _filled(template.query, values)
        body, content_type = "", ""
        if method == "GET":
            if form is not None and template.url is None:
                url = url.partition("?")[0]  # a GET form replaces its action's query
            query = fields + query
        elif template.json is not None:
            body = request.json_body(_filled_json(json.loads(template.json), values))
            content_type = request.JSON
        else:
            # As request.form_body, keeping repeated names (a group of checked checkboxes).
            body = self.encoded(fields)
            content_type = request.FORM if body else ""
        if query:
            url = f"{url}{'&' if '?' in url else '?'}{self.encoded(query)}"
        url = self.canonical(url)
        if url is None:
            return None
        # A page's text may hold line breaks; a header value may not (no header injection).
        headers = tuple(
            (name, " ".join(value.split())) for name, value in _filled(template.headers, values)
        )
        built = Request(url, method, body, content_type, headers)
        return built.url if built.is_plain_get else built

    def encoded(self, pairs: list[tuple[str, str]]) -> str:
        """Form data in the page's charset; what it cannot write becomes &#N; as in browsers."""
        return urlencode(pairs, encoding=self.encoding, errors="xmlcharrefreplace")

    def canonical(self, url: str) -> str | None:
        """url canonicalised (None if it cannot be); one POST URL serves a whole listing, so
        the answers are kept for the page (a bounded number of them)."""
        if url not in self._canonical:
            try:
                canonical: str | None = urls.canonicalize(url, ignore_params=self.ignore_params)
            except ValueError:
                canonical = None
            if len(self._canonical) >= _CANONICAL_CACHE:
                return canonical
            self._canonical[url] = canonical
        return self._canonical[url]

    def form(self, selector: str) -> Form | None:
        """The form a selector names on this page, read once."""
        if selector not in self._forms:
            node = self.tree.css_first(selector)
            self._forms[selector] = None if node is None else self._read_form(node)
        return self._forms[selector]

    def _read_form(self, node: LexborNode) -> Form:
        action = self.resolve(node.attrs.get("action")) or self.page_url
        method = "POST" if (node.attrs.get("method") or "").strip().lower() == "post" else "GET"
        return Form(action, method, tuple(successful_controls(node)))


def successful_controls(form: LexborNode) -> Iterator[tuple[str, str]]:
    """(name, value) of the controls a browser submits with a form, in document order."""
    for control in form.css("input, select, textarea"):
        attrs = control.attrs
        name = attrs.get("name")
        if not name or "disabled" in attrs or _in_disabled_fieldset(control, form):
            continue
        if control.tag == "textarea":
            yield name, control.text(deep=True)
        elif control.tag == "select":
            options = control.css("option")
            chosen = [o for o in options if "selected" in o.attrs]
            if not chosen and "multiple" not in attrs:  # a single select shows its first
                chosen = [o for o in options if "disabled" not in o.attrs][:1]
            chosen = [o for o in chosen if "disabled" not in o.attrs]  # never submitted
            for option in chosen:
                value = option.attrs.get("value")
                yield name, value if value is not None else " ".join(option.text().split())
        else:
            kind = (attrs.get("type") or "text").strip().lower()
            if kind in _NOT_SUBMITTED:
                continue
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    value = attrs.get("value")
                    yield name, "on" if value is None else value
                continue
            yield name, attrs.get("value") or ""


def _in_disabled_fieldset(control: LexborNode, form: LexborNode) -> bool:
    """Whether a control sits in a disabled <fieldset> within its form (its first <legend>
    excepted, as browsers do)."""
    node = control.parent
    legend = None
    while node is not None and node.mem_id != form.mem_id:
        if node.tag == "legend":
            legend = node
        elif node.tag == "fieldset" and "disabled" in node.attrs:
            first = node.css_first("legend")
            if legend is None or first is None or legend.mem_id != first.mem_id:
                return True
        node = node.parent
    return False


def _filled(pairs: Iterable[tuple[str, str]], values: dict[str, str]) -> list[tuple[str, str]]:
    return [(name, request.fill(template, values)) for name, template in pairs]


def _overridden(
    fields: Iterable[tuple[str, str]], overrides: list[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The form's fields with `overrides` in place of same-named ones (at the first one's
    position), the others after them."""
    given = dict(overrides)
    result: list[tuple[str, str]] = []
    placed: set[str] = set()
    for name, value in fields:
        if name not in given:
            result.append((name, value))
        elif name not in placed:
            result.append((name, given[name]))
            placed.add(name)
    result.extend((name, value) for name, value in overrides if name not in placed)
    return result


def _filled_json(value: object, values: dict[str, str]) -> object:
    if isinstance(value, str):
        return request.fill(value, values)
    if isinstance(value, dict):
        return {key: _filled_json(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_filled_json(item, values) for item in value]
    return value
