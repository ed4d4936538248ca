"""Field specs of JSON and XML API rules: how to read one field of an item (a path, a type,
formats, a regex, required, a map of the publisher's values to ours), checked into ``ApiField``.
Pure Python (no Django).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from crawls.engine import field_rules
from crawls.engine import rule_checks as checks
from crawls.engine.api_paths import PathParser

MAX_MAP = 200  # entries of one field's map

_FIELD_KEYS = ("path", "type", "formats", "regex", "required", "map")
_NAME = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class ApiField(field_rules.FieldRule):
    """How to read one field of an item: a path instead of a CSS selector (css stays "")."""

    path: str = ""  # (its map, after the regex, is FieldRule's)


class FieldParser(PathParser):
    """The fields part of API rules (problems keyed "fields.<name>...")."""

    def fields(self, value: object) -> dict[str, ApiField]:
        if value is None:
            self.errors["fields"] = "fields are required: at least a title"
            return {}
        if not isinstance(value, Mapping):
            self.errors["fields"] = (
                f"fields must be an object mapping field names to paths or field specs, "
                f"not {checks.kind(value)}"
            )
            return {}
        if len(value) > self.limits.fields:
            self.errors["fields"] = (
                f"fields has {len(value)} fields; at most {self.limits.fields} are allowed"
            )
            return {}
        fields = {}
        for name, spec in value.items():
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                self.errors[f"fields.{name}"] = (
                    f"field name {name!r} must be a lowercase identifier "
                    f"(a-z, 0-9 and _, not starting with a digit)"
                )
                continue
            rule = self.field(name, spec)
            if rule is not None:
                fields[name] = rule
        if "title" not in value:
            self.errors["fields.title"] = "a title field is required: every item needs a title"
        return fields

    def field(self, name: str, spec: object) -> ApiField | None:
        where = f"fields.{name}"
        errors = self.errors
        if isinstance(spec, str):
            spec = {"path": spec}
        elif not isinstance(spec, Mapping):
            errors[where] = (
                f"{name} must be a path string or an object with {', '.join(_FIELD_KEYS)}; "
                f"not {checks.kind(spec)}"
            )
            return None
        before = len(errors)
        for key in spec:
            if key not in _FIELD_KEYS:
                errors[f"{where}.{key}"] = (
                    f"unknown key {key!r} in {name}; expected one of: {', '.join(_FIELD_KEYS)}"
                )
        path = self.path(f"{where}.path", spec.get("path"), required=True)

        allowed = field_rules.BID_FIELD_TYPES.get(name)
        type_ = spec.get("type", allowed[0] if allowed else "text")
        if not isinstance(type_, str) or type_ not in field_rules.TYPES:
            errors[f"{where}.type"] = (
                f"{name}.type must be one of {', '.join(field_rules.TYPES)}; not {type_!r}"
            )
        elif allowed and type_ not in allowed:
            errors[f"{where}.type"] = f"{name} must be {' or '.join(allowed)}, not {type_!r}"

        formats = spec.get("formats") or []
        if not isinstance(formats, list | tuple):
            errors[f"{where}.formats"] = (
                f"{name}.formats must be a list of strptime formats such as '%Y-%m-%d', "
                f"not {checks.kind(formats)}"
            )
            formats = []
        elif formats and type_ in field_rules.TYPES and type_ not in ("date", "datetime"):
            errors[f"{where}.formats"] = (
                f"formats only apply to date and datetime fields; {name} is {type_!r}"
            )
        else:
            for index, fmt in enumerate(formats):
                if problem := checks.format_problem(fmt):
                    errors[f"{where}.formats[{index}]"] = problem

        pattern = None
        if (regex := spec.get("regex")) is not None:
            pattern, problem = checks.regex_problem(regex, self.limits.regex_length)
            if problem is not None:
                errors[f"{where}.regex"] = f"{name}.regex {problem}"
            elif pattern is not None and pattern.groups > 1:
                errors[f"{where}.regex"] = (
                    f"{name}.regex {regex!r} has {pattern.groups} groups; use at most one "
                    f"(the part to keep) and (?:...) for the others"
                )

        required = spec.get("required", name == "title")
        if not isinstance(required, bool):
            errors[f"{where}.required"] = (
                f"{name}.required must be true or false, not {checks.kind(required)}"
            )
        elif name == "title" and not required:
            errors[f"{where}.required"] = "title must be required: every item needs a title"

        mapping = self.map(f"{where}.map", spec.get("map"))
        if len(errors) > before or path is None:
            return None
        return ApiField(
            name=name,
            css="",
            attr=None,
            type=type_,
            formats=tuple(formats),
            regex=pattern,
            required=required is True,
            path=path,
            map=mapping,
        )

    def map(self, where: str, value: object) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, Mapping):
            self.errors[where] = (
                f"map must be an object of the publisher's values to yours, such as "
                f'{{"취소공고": "cancelled"}}; not {checks.kind(value)}'
            )
            return ()
        if len(value) > MAX_MAP:
            self.errors[where] = f"map has {len(value)} entries; at most {MAX_MAP} are allowed"
            return ()
        entries = []
        limit = self.limits.selector_length
        for source, target in value.items():
            if not isinstance(target, str) or len(target) > limit or len(str(source)) > limit:
                self.errors[f"{where}.{source}"] = (
                    f"map values must be strings of at most {limit} characters, "
                    f"not {checks.kind(target)}"
                )
                continue
            entries.append((" ".join(str(source).split()), target))
        return tuple(entries)
