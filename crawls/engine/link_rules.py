"""The object form of an HTML source's `follow` / `items` entries: a link or a request built
from any attribute of the elements a selector matches, through a pattern.

```json
{"css": "a[onclick*=fn_egov_inqire_notice]", "attr": "onclick",
 "regex": "fn_egov_inqire_notice\\('([^']+)'\\)",
 "request": {"method": "POST", "url": "view.do", "from_form": "form[name=viewForm]",
             "form": {"nttId": "{1}"}}}
```
``link_parse`` validates one entry (errors keyed by path, "follow[1].request.form.nttId") and
gives a hashable, picklable ``LinkRule``; ``link_dump`` gives its canonical JSON back. Templates
may use the regex's groups ({0} the whole match, {1}..{9}) and {secret.NAME}. Building the
requests from a page is crawls.engine.html_requests. Pure Python (no Django).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from crawls.engine import patterns, request
from crawls.engine import rule_checks as checks
from crawls.engine.rule_limits import Limits

LINK_KEYS = ("css", "attr", "regex", "request")
REQUEST_KEYS = ("method", "url", "from_form", "form", "query", "json", "headers")
TEXT_ATTR = "text"  # attr "text": the element's text rather than an attribute
MAX_GROUPS = 9
FORBIDDEN_HEADERS = request.OWN_HEADERS  # the fetcher's own: rules may not set them
_ATTR = re.compile(r"[^\s\"'>/=]+")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an RFC 9110 token
_GROUP = re.compile(r"\d")
# A JSON body template's bounds, beyond the limits' entry count for each object or list.
JSON_DEPTH = 8
JSON_LENGTH = 10_000

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RequestTemplate:
    """How to build a request from one match; every string may hold placeholders."""

    method: str | None  # None: the form's method with from_form, else GET
    url: str | None  # None: the form's action with from_form, else the page's URL
    from_form: str | None  # a selector of the <form> whose controls start the fields
    form: Pairs = ()
    query: Pairs = ()
    json: str | None = None  # the JSON body template, as canonical JSON text (hashable)
    headers: Pairs = ()


@dataclass(frozen=True)
class LinkRule:
    """A follow/items entry given as an object: a link or a request per matching element."""

    css: str
    attr: str = "href"
    regex: patterns.Regex | None = None
    request: RequestTemplate | None = None


def link_parse(
    value: Mapping[str, Any],
    path: str,
    probe: LexborHTMLParser,
    limits: Limits,
    errors: dict[str, str],
) -> LinkRule | None:
    """One follow/items object entry, or None with its problems added to `errors`."""
    before = len(errors)
    for key in value:
        if key not in LINK_KEYS:
            errors[f"{path}.{key}"] = (
                f"unknown key {key!r}; expected one of: {', '.join(LINK_KEYS)}"
            )
    css = value.get("css")
    if problem := checks.selector_problem(css, probe, limits.selector_length):
        errors[f"{path}.css"] = problem
    attr = value.get("attr", "href")
    if not isinstance(attr, str) or not _ATTR.fullmatch(attr.strip()):
        shown = repr(attr) if isinstance(attr, str) else checks.kind(attr)
        errors[f"{path}.attr"] = (
            f"attr must be an attribute name such as 'href', 'onclick' or 'data-id' "
            f"(or 'text' for the element's text), not {shown}"
        )
    regex = None
    if value.get("regex") is not None:
        regex, problem = checks.regex_problem(value["regex"], limits.regex_length)
        if problem is not None:
            errors[f"{path}.regex"] = f"regex {problem}"
        elif regex is not None and regex.groups > MAX_GROUPS:
            errors[f"{path}.regex"] = (
                f"regex has {regex.groups} groups; at most {MAX_GROUPS} ({{1}}..{{9}}) can be used"
            )
            regex = None
    groups = regex.groups if regex is not None else 0
    template = None
    if value.get("request") is not None:
        template = _request(value["request"], f"{path}.request", groups, probe, limits, errors)
    if len(errors) > before:
        return None
    return LinkRule(css=str(css).strip(), attr=attr.strip().lower(), regex=regex, request=template)


def link_dump(rule: LinkRule) -> dict[str, object]:
    """The canonical JSON form of a LinkRule: every key present."""
    template = rule.request
    return {
        "css": rule.css,
        "attr": rule.attr,
        "regex": rule.regex.pattern if rule.regex is not None else None,
        "request": None
        if template is None
        else {
            "method": template.method,
            "url": template.url,
            "from_form": template.from_form,
            "form": dict(template.form),
            "query": dict(template.query),
            "json": json.loads(template.json) if template.json is not None else None,
            "headers": dict(template.headers),
        },
    }


def _request(
    value: object,
    path: str,
    groups: int,
    probe: LexborHTMLParser,
    limits: Limits,
    errors: dict[str, str],
) -> RequestTemplate | None:
    if not isinstance(value, Mapping):
        errors[path] = (
            f"request must be an object with {', '.join(REQUEST_KEYS)}; not {checks.kind(value)}"
        )
        return None
    for key in value:
        if key not in REQUEST_KEYS:
            errors[f"{path}.{key}"] = (
                f"unknown key {key!r}; expected one of: {', '.join(REQUEST_KEYS)}"
            )
    method = value.get("method")
    if method is not None:
        if not isinstance(method, str) or method.strip().upper() not in request.METHODS:
            shown = repr(method) if isinstance(method, str) else checks.kind(method)
            errors[f"{path}.method"] = f"method must be GET or POST, not {shown}"
            method = None
        else:
            method = method.strip().upper()
    url = value.get("url")
    if url is not None:
        if not isinstance(url, str) or not url.strip():
            errors[f"{path}.url"] = (
                f"url must be a URL template such as 'view.do' or '/notice/{{1}}', "
                f"not {checks.kind(url)}"
            )
            url = None
        else:
            url = url.strip()
            _template(url, f"{path}.url", groups, limits, errors)
    from_form = value.get("from_form")
    if from_form is not None:
        if problem := checks.selector_problem(from_form, probe, limits.selector_length):
            errors[f"{path}.from_form"] = problem
        else:
            from_form = from_form.strip()
    form = _pairs(value.get("form"), f"{path}.form", groups, limits, errors)
    query = _pairs(value.get("query"), f"{path}.query", groups, limits, errors)
    headers = _pairs(value.get("headers"), f"{path}.headers", groups, limits, errors)
    for name, _ in headers:
        if not _HEADER_NAME.fullmatch(name):
            errors[f"{path}.headers.{name}"] = f"{name!r} is not a header name"
        elif any(char in dict(headers)[name] for char in "\r\n\0"):
            errors[f"{path}.headers.{name}"] = "header values cannot hold line breaks"
        elif name.lower() in FORBIDDEN_HEADERS:
            errors[f"{path}.headers.{name}"] = (
                f"{name} is set by the crawler, not by rules "
                f"(not allowed: {', '.join(sorted(FORBIDDEN_HEADERS))})"
            )
    body = None
    if value.get("json") is not None:
        size = len(errors)
        _json(value["json"], f"{path}.json", groups, limits, errors, depth=0)
        if len(errors) == size:
            body = request.json_body(value["json"])
            if len(body) > JSON_LENGTH:
                errors[f"{path}.json"] = (
                    f"json is {len(body)} characters long; at most {JSON_LENGTH} are allowed"
                )
        if form or from_form is not None:
            errors[f"{path}.json"] = "give either json or form/from_form as the body, not both"
        if method == "GET":
            errors[f"{path}.json"] = "a GET request has no body: use POST with json"
    return RequestTemplate(
        method=method,
        url=url,
        from_form=from_form,
        form=form,
        query=query,
        json=body,
        headers=headers,
    )


def _pairs(value: object, path: str, groups: int, limits: Limits, errors: dict[str, str]) -> Pairs:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        errors[path] = f"expected an object of names to text templates, not {checks.kind(value)}"
        return ()
    if len(value) > limits.entries:
        errors[path] = f"has {len(value)} entries; at most {limits.entries} are allowed"
        return ()
    pairs = []
    for name, template in value.items():
        where = f"{path}.{name}"
        if not isinstance(name, str) or not name or len(name) > limits.selector_length:
            errors[where] = "names must be non-empty strings"
        elif not isinstance(template, str):
            errors[where] = f"expected a text template such as '{{1}}', not {checks.kind(template)}"
        elif _template(template, where, groups, limits, errors):
            pairs.append((name, template))
    return tuple(pairs)


def _json(
    value: object, path: str, groups: int, limits: Limits, errors: dict[str, str], depth: int
) -> None:
    if depth > JSON_DEPTH:
        errors[path] = f"json nests deeper than {JSON_DEPTH} levels"
    elif isinstance(value, str):
        _template(value, path, groups, limits, errors)
    elif isinstance(value, Mapping | list):
        if len(value) > limits.entries:
            errors[path] = f"has {len(value)} entries; at most {limits.entries} are allowed"
            return
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        for key, item in items:
            where = f"{path}.{key}" if isinstance(value, Mapping) else f"{path}[{key}]"
            _json(item, where, groups, limits, errors, depth + 1)
    elif value is not None and not isinstance(value, bool | int | float):
        errors[path] = f"expected a JSON value, not {checks.kind(value)}"


def _template(
    template: str, path: str, groups: int, limits: Limits, errors: dict[str, str]
) -> bool:
    """Whether a text template is fine; its problem goes under `path` otherwise."""
    if len(template) > limits.selector_length:
        errors[path] = (
            f"template is {len(template)} characters long; "
            f"at most {limits.selector_length} are allowed"
        )
        return False
    for name in sorted(request.placeholders(template)):
        if name.startswith(request.SECRET_PREFIX):
            continue
        if not _GROUP.fullmatch(name):
            errors[path] = (
                f"unknown placeholder {{{name}}}; use {{0}} (the whole match), {{1}}..{{9}} "
                f"(the regex's groups) or {{secret.NAME}}"
            )
            return False
        if int(name) > groups:
            have = "no groups" if not groups else f"only {groups} group{'s' * (groups > 1)}"
            errors[path] = f"{{{name}}} needs a regex with {name} groups; the regex has {have}"
            return False
    return True
