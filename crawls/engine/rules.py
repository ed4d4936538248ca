"""Extraction rules: user-supplied JSON that says what to crawl and what to read.

``rules_parse`` validates the JSON and turns it into an immutable ``Rules``; it reports every
problem at once in ``RulesError.errors``, keyed by path ("fields.views.type", "follow[1]"), so an
API can answer with all of them. ``rules_dump`` gives the canonical JSON form back. Sizes are
bounded (``Limits``, from the RULES_MAX_* settings) and regexes run on RE2 (``patterns``), so no
rules can make extraction stall. Shared by the engine, the API and the preview service. The
checks of single values (a selector, a regex, a date format) are in ``rule_checks``; the
object form of follow/items entries (links and requests built from any attribute through a
pattern) is ``link_rules``; the fields (``FieldRule``, ``FieldMap``, the bid fields and their
types) are ``field_rules``, whose names are importable from here too. A field may carry a
``map`` (text → text, after its regex).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from selectolax.lexbor import LexborHTMLParser

from crawls.engine import field_rules, link_rules
from crawls.engine import rule_checks as checks
from crawls.engine.field_rules import BID_FIELD_TYPES as BID_FIELD_TYPES
from crawls.engine.field_rules import BID_FIELDS as BID_FIELDS
from crawls.engine.field_rules import TYPES as TYPES
from crawls.engine.field_rules import FieldMap as FieldMap
from crawls.engine.field_rules import FieldRule as FieldRule
from crawls.engine.link_rules import LinkRule
from crawls.engine.rule_limits import Limits as Limits
from crawls.engine.rule_limits import RulesError as RulesError

ROOT = "rules"  # error key for problems with the document as a whole

_TOP_KEYS = ("follow", "items", "fields", "timezone", "ignore_params")


@dataclass(frozen=True)
class Rules:
    """Validated, normalised extraction rules."""

    # A CSS selector (links by href, the fast path) or a LinkRule (crawls.engine.link_rules).
    follow: tuple[str | LinkRule, ...]
    items: tuple[str | LinkRule, ...]
    fields: Mapping[str, FieldRule]
    timezone: ZoneInfo
    ignore_params: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.fields, FieldMap):  # Rules built by hand stay immutable too
            object.__setattr__(self, "fields", FieldMap(self.fields))


def rules_parse(data: object, *, limits: Limits | None = None) -> Rules:
    """Validate and normalise rules JSON; raise RulesError listing every problem."""
    limits = limits or Limits.from_settings()
    if not isinstance(data, Mapping):
        raise RulesError({ROOT: f"rules must be a JSON object, not {checks.kind(data)}"})
    errors: dict[str, str] = {}
    for key in data:
        if key not in _TOP_KEYS:
            errors[str(key)] = f"unknown key {key!r}; expected one of: {', '.join(_TOP_KEYS)}"
    # One throwaway document per call: a selectolax parser is not thread-safe.
    probe = LexborHTMLParser("<p></p>")
    follow = _selectors(data, "follow", probe, limits, errors)
    items = _selectors(data, "items", probe, limits, errors)
    fields = field_rules.fields_parse(data.get("fields"), probe, limits, errors)
    timezone = _timezone(data.get("timezone", "UTC"), errors)
    ignore_params = _ignore_params(data.get("ignore_params"), errors)
    if not (data.get("follow") or data.get("items") or data.get("fields")):
        errors[ROOT] = "nothing to do: give at least one of follow, items or fields"
    if errors or timezone is None:
        raise RulesError(errors)
    return Rules(follow, items, FieldMap(fields), timezone, ignore_params)


def rules_dump(rules: Rules) -> dict[str, object]:
    """The canonical JSON form of rules: every key present, fields in full."""
    return {
        "follow": [_entry_dump(entry) for entry in rules.follow],
        "items": [_entry_dump(entry) for entry in rules.items],
        "fields": {name: field_rules.field_dump(rule) for name, rule in rules.fields.items()},
        "timezone": rules.timezone.key,
        "ignore_params": list(rules.ignore_params),
    }


def _entry_dump(entry: str | LinkRule) -> str | dict[str, object]:
    return entry if isinstance(entry, str) else link_rules.link_dump(entry)


def patterns_check(name: str, values: object, *, limits: Limits | None = None) -> dict[str, str]:
    """Problems with a source's include/exclude URL patterns, keyed by path ("name[0]")."""
    limits = limits or Limits.from_settings()
    if not isinstance(values, list | tuple):
        return {name: f"{name} must be a list of regular expressions, not {checks.kind(values)}"}
    if len(values) > limits.patterns:
        return {name: f"{name} has {len(values)} patterns; at most {limits.patterns} are allowed"}
    errors = {}
    for index, value in enumerate(values):
        if problem := checks.regex_problem(value, limits.regex_length)[1]:
            errors[f"{name}[{index}]"] = problem
    return errors


def _selectors(
    data: Mapping[str, object],
    key: str,
    probe: LexborHTMLParser,
    limits: Limits,
    errors: dict[str, str],
) -> tuple[str | LinkRule, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        errors[key] = f"{key} must be a list of CSS selectors, not {checks.kind(value)}"
        return ()
    if len(value) > limits.selectors:
        errors[key] = f"{key} has {len(value)} selectors; at most {limits.selectors} are allowed"
        return ()
    selectors: list[str | LinkRule] = []
    for index, selector in enumerate(value):
        if isinstance(selector, Mapping):
            entry = link_rules.link_parse(selector, f"{key}[{index}]", probe, limits, errors)
            if entry is not None:
                selectors.append(entry)
            continue
        problem = checks.selector_problem(selector, probe, limits.selector_length)
        if problem is None:
            selectors.append(selector.strip())
        else:
            errors[f"{key}[{index}]"] = problem
    return tuple(selectors)


def _timezone(value: object, errors: dict[str, str]) -> ZoneInfo | None:
    if not isinstance(value, str) or not value.strip():
        shown = repr(value) if isinstance(value, str) else checks.kind(value)
        errors["timezone"] = (
            f"timezone must be an IANA time zone name such as 'Asia/Seoul', not {shown}"
        )
        return None
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = (
            f"unknown time zone {value!r}; expected an IANA name such as 'Asia/Seoul' or 'UTC'"
        )
        return None


def _ignore_params(value: object, errors: dict[str, str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        errors["ignore_params"] = (
            f"ignore_params must be a list of query parameter names, not {checks.kind(value)}"
        )
        return ()
    params: list[str] = []
    for index, param in enumerate(value):
        if not isinstance(param, str) or not param.strip():
            shown = repr(param) if isinstance(param, str) else checks.kind(param)
            errors[f"ignore_params[{index}]"] = (
                f"expected a query parameter name such as 'utm_source', not {shown}"
            )
        elif param.strip() not in params:
            params.append(param.strip())
    return tuple(params)
