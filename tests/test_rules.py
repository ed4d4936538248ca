"""Extraction rules: every problem reported by path, values normalised, dump round-trips."""

import copy
import pickle
from zoneinfo import ZoneInfo

import pytest

from crawls.engine.rules import (
    BID_FIELDS,
    ROOT,
    FieldRule,
    Rules,
    RulesError,
    patterns_check,
    rules_dump,
    rules_parse,
)

BOARD_RULES = {
    "follow": ["nav.pagination a", "ul.categories a"],
    "items": ["table.board td.subject a"],
    "fields": {
        "title": "h3.view-title",
        "department": {"css": "td.dept"},
        "reference": {"css": "td.ref", "regex": r"공고번호\s*:?\s*(\S+)"},
        "views": {"css": "td.hits", "type": "int"},
        "amount": {"css": "td.amount", "type": "decimal"},
        "post_date": {"css": "td.date", "type": "date", "formats": ["%Y.%m.%d"]},
        "deadline": {"css": "td.deadline", "type": "datetime", "required": False},
        "attachment": {"css": "a.file", "attr": "href"},
        "opening": {"css": "td.opening", "type": "datetime", "formats": ["%Y-%m-%d %H:%M"]},
    },
    "timezone": "Asia/Seoul",
    "ignore_params": ["utm_source", "sessionid"],
}


def errors_of(data: object) -> dict[str, str]:
    with pytest.raises(RulesError) as caught:
        rules_parse(data)
    return caught.value.errors


def with_changes(**changes: object) -> dict:
    data = copy.deepcopy(BOARD_RULES)
    data.update(changes)
    return data


def with_field(name: str, spec: object) -> dict:
    data = copy.deepcopy(BOARD_RULES)
    data["fields"][name] = spec
    return data


def test_board_rules_parse_into_typed_field_rules():
    rules = rules_parse(BOARD_RULES)

    assert rules.follow == ("nav.pagination a", "ul.categories a")
    assert rules.items == ("table.board td.subject a",)
    assert rules.timezone == ZoneInfo("Asia/Seoul")
    assert rules.ignore_params == ("utm_source", "sessionid")
    assert list(rules.fields) == list(BOARD_RULES["fields"])
    assert rules.fields["post_date"] == FieldRule(
        name="post_date",
        css="td.date",
        attr=None,
        type="date",
        formats=("%Y.%m.%d",),
        regex=None,
        required=False,
    )
    reference = rules.fields["reference"]
    assert reference.regex is not None
    assert reference.regex.pattern == r"공고번호\s*:?\s*(\S+)"
    assert rules.fields["attachment"].attr == "href"
    assert rules.fields["deadline"].required is False


def test_shorthand_field_is_a_text_field_and_title_is_required_by_default():
    rules = rules_parse({"fields": {"title": "h1", "summary": "div.summary p"}})

    assert rules.fields["title"] == FieldRule("title", "h1", None, "text", (), None, True)
    assert rules.fields["summary"] == FieldRule(
        "summary", "div.summary p", None, "text", (), None, False
    )


def test_defaults_for_optional_keys():
    rules = rules_parse({"items": ["a.item"]})

    by_hand = Rules(
        follow=(), items=("a.item",), fields={}, timezone=ZoneInfo("UTC"), ignore_params=()
    )
    assert rules == by_hand
    assert hash(rules) == hash(by_hand)


def test_known_bid_fields_default_to_their_own_type():
    rules = rules_parse(
        {
            "fields": {
                "title": "h1",
                "views": "td.hits",
                "amount": "td.amount",
                "post_date": "td.date",
                "deadline": "td.deadline",
                "reference": "td.ref",
            }
        }
    )

    types = {name: rule.type for name, rule in rules.fields.items()}
    assert types == {
        "title": "text",
        "views": "int",
        "amount": "decimal",
        "post_date": "date",
        "deadline": "datetime",
        "reference": "text",
    }


def test_deadline_may_be_a_date_and_extra_fields_any_type():
    rules = rules_parse(
        {
            "fields": {
                "title": "h1",
                "deadline": {"css": "td.deadline", "type": "date"},
                "budget_year": {"css": "td.year", "type": "int"},
                "opening": {"css": "td.opening", "type": "datetime"},
            }
        }
    )

    assert rules.fields["deadline"].type == "date"
    assert rules.fields["budget_year"].type == "int"
    assert rules.fields["opening"].type == "datetime"


def test_selectors_and_names_are_normalised():
    rules = rules_parse(
        {
            "follow": ["  nav a  "],
            "fields": {"title": {"css": " h1 ", "attr": " Content "}},
            "timezone": "Europe/Paris",
            "ignore_params": ["utm_source", " utm_source ", "page_ref"],
        }
    )

    assert rules.follow == ("nav a",)
    assert rules.fields["title"].css == "h1"
    assert rules.fields["title"].attr == "content"
    assert rules.ignore_params == ("utm_source", "page_ref")


def test_bid_fields_are_the_known_columns():
    assert BID_FIELDS == (
        "title",
        "department",
        "views",
        "post_date",
        "amount",
        "deadline",
        "reference",
        "currency",
        "status",
        "procurement_method",
        "classifications",
    )


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [
        (["h1"], ROOT, "rules must be a JSON object, not a list"),
        ("h1", ROOT, "rules must be a JSON object, not a string"),
        ({}, ROOT, "nothing to do: give at least one of follow, items or fields"),
        ({"follow": [], "items": [], "fields": {}}, ROOT, "nothing to do"),
        (with_changes(xpath=["//a"]), "xpath", "unknown key 'xpath'; expected one of: follow"),
        (with_changes(follow="nav a"), "follow", "follow must be a list of CSS selectors"),
        (with_changes(items={"a": 1}), "items", "items must be a list of CSS selectors"),
        (with_changes(follow=["nav a", "a["]), "follow[1]", "invalid CSS selector 'a['"),
        (with_changes(items=["td >"]), "items[0]", "invalid CSS selector 'td >'"),
        (with_changes(items=["p:first"]), "items[0]", "expected a CSS selector such as"),
        (with_changes(follow=[""]), "follow[0]", "expected a non-empty CSS selector string"),
        (with_changes(follow=["  "]), "follow[0]", "not '  '"),
        (with_changes(items=[42]), "items[0]", "non-empty CSS selector string, not a number"),
        (with_changes(fields=["h1"]), "fields", "fields must be an object mapping field names"),
        (with_field("Bad-Name", "td"), "fields.Bad-Name", "must be a lowercase identifier"),
        (with_field("2nd", "td"), "fields.2nd", "must be a lowercase identifier"),
        (with_field("notes", 5), "fields.notes", "notes must be a CSS selector string or an"),
        (with_field("notes", {"type": "text"}), "fields.notes.css", "notes needs a css selector"),
        (with_field("notes", {"css": "div["}), "fields.notes.css", "invalid CSS selector"),
        (with_field("notes", {"css": ""}), "fields.notes.css", "non-empty CSS selector"),
        (
            with_field("notes", {"css": "p", "xpath": "//p"}),
            "fields.notes.xpath",
            "unknown key 'xpath' in notes; expected one of: css, attr, type",
        ),
        (
            with_field("notes", {"css": "p", "type": "float"}),
            "fields.notes.type",
            "notes.type must be one of text, int, decimal, date, datetime; not 'float'",
        ),
        (
            with_field("views", {"css": "td", "type": "text"}),
            "fields.views.type",
            "views must be int, not 'text'",
        ),
        (
            with_field("amount", {"css": "td", "type": "int"}),
            "fields.amount.type",
            "amount must be decimal, not 'int'",
        ),
        (
            with_field("post_date", {"css": "td", "type": "datetime"}),
            "fields.post_date.type",
            "post_date must be date, not 'datetime'",
        ),
        (
            with_field("deadline", {"css": "td", "type": "text"}),
            "fields.deadline.type",
            "deadline must be datetime or date, not 'text'",
        ),
        (
            with_field("title", {"css": "h1", "type": "int"}),
            "fields.title.type",
            "title must be text, not 'int'",
        ),
        (
            with_field("department", {"css": "td", "type": "date"}),
            "fields.department.type",
            "department must be text, not 'date'",
        ),
        (
            with_field("title", {"css": "h1", "required": False}),
            "fields.title.required",
            "title must be required: every item needs a title",
        ),
        (
            with_field("notes", {"css": "p", "required": "yes"}),
            "fields.notes.required",
            "notes.required must be true or false, not a string",
        ),
        (
            with_field("notes", {"css": "p", "attr": 3}),
            "fields.notes.attr",
            "notes.attr must be an attribute name such as 'href' or 'content', not a number",
        ),
        (
            with_field("notes", {"css": "p", "attr": "data value"}),
            "fields.notes.attr",
            "not 'data value'",
        ),
        (
            with_field("post_date", {"css": "td", "formats": "%Y-%m-%d"}),
            "fields.post_date.formats",
            "post_date.formats must be a list of strptime formats such as '%Y-%m-%d', not a string",
        ),
        (
            with_field("post_date", {"css": "td", "formats": ["%Y-%m-%d", 7]}),
            "fields.post_date.formats[1]",
            "expected a non-empty strptime format such as '%Y-%m-%d', not a number",
        ),
        (
            with_field("post_date", {"css": "td", "formats": ["%Y-%m-%Q"]}),
            "fields.post_date.formats[0]",
            "format '%Y-%m-%Q' cannot read back the dates it writes",
        ),
        (
            with_field("post_date", {"css": "td", "formats": ["%m.%d"]}),
            "fields.post_date.formats[0]",
            "format '%m.%d' must give the year, month and day",
        ),
        (
            with_field("post_date", {"css": "td", "formats": ["%Y-%-m-%-d"]}),
            "fields.post_date.formats[0]",
            "cannot read back",
        ),
        (
            with_field("views", {"css": "td", "formats": ["%Y"]}),
            "fields.views.formats",
            "formats only apply to date and datetime fields; views is 'int'",
        ),
        (
            with_field("notes", {"css": "p", "regex": "(unclosed"}),
            "fields.notes.regex",
            "notes.regex '(unclosed' does not compile: missing ): (unclosed",
        ),
        (
            with_field("notes", {"css": "p", "regex": r"(\d+)-(\d+)"}),
            "fields.notes.regex",
            "has 2 groups; use at most one (the part to keep) and (?:...) for the others",
        ),
        (
            with_field("notes", {"css": "p", "regex": 12}),
            "fields.notes.regex",
            "notes.regex must be a non-empty regular expression string, not a number",
        ),
        ({"fields": {"summary": "p"}}, "fields.title", "a title field is required"),
        (with_changes(timezone="Mars/Base"), "timezone", "unknown time zone 'Mars/Base'"),
        (with_changes(timezone="../../etc/passwd"), "timezone", "unknown time zone"),
        (with_changes(timezone=9), "timezone", "IANA time zone name such as 'Asia/Seoul'"),
        (
            with_changes(ignore_params="utm_source"),
            "ignore_params",
            "ignore_params must be a list of query parameter names, not a string",
        ),
        (
            with_changes(ignore_params=["utm_source", ""]),
            "ignore_params[1]",
            "expected a query parameter name such as 'utm_source', not ''",
        ),
    ],
)
def test_each_problem_is_reported_at_its_path(data, path, expected):
    errors = errors_of(data)

    assert path in errors, errors
    assert expected in errors[path]


def test_several_problems_are_reported_together():
    data = {
        "follow": ["nav a", "a["],
        "items": "td a",
        "fields": {
            "views": {"css": "td.hits", "type": "text"},
            "amount": {"css": "td.amount", "type": "decimal", "regex": "(a)(b)"},
            "Notes": "p",
        },
        "timezone": "Mars/Base",
        "ignore_params": [1],
        "xpath": "//a",
    }

    errors = errors_of(data)

    assert errors == {
        "xpath": "unknown key 'xpath'; expected one of: follow, items, fields, timezone, "
        "ignore_params",
        "follow[1]": "invalid CSS selector 'a[': expected a CSS selector such as 'td.subject a'",
        "items": "items must be a list of CSS selectors, not a string",
        "fields.views.type": "views must be int, not 'text'",
        "fields.amount.regex": "amount.regex '(a)(b)' has 2 groups; use at most one (the part "
        "to keep) and (?:...) for the others",
        "fields.Notes": "field name 'Notes' must be a lowercase identifier (a-z, 0-9 and _, "
        "not starting with a digit)",
        "fields.title": "a title field is required: every item needs a title",
        "timezone": "unknown time zone 'Mars/Base'; expected an IANA name such as 'Asia/Seoul' "
        "or 'UTC'",
        "ignore_params[0]": "expected a query parameter name such as 'utm_source', not a number",
    }


def test_rules_error_is_a_value_error_whose_message_names_each_path():
    with pytest.raises(ValueError, match=r"fields\.views\.type: views must be int") as caught:
        rules_parse(with_field("views", {"css": "td", "type": "text"}))

    assert isinstance(caught.value, RulesError)
    assert list(caught.value.errors) == ["fields.views.type"]


def test_a_valid_field_next_to_an_invalid_one_is_not_reported():
    errors = errors_of(with_field("views", {"css": "td", "type": "date"}))

    assert errors == {"fields.views.type": "views must be int, not 'date'"}


def test_dump_is_the_full_canonical_form():
    dumped = rules_dump(rules_parse({"fields": {"title": "h1"}, "items": ["a.item"]}))

    assert dumped == {
        "follow": [],
        "items": ["a.item"],
        "fields": {
            "title": {
                "css": "h1",
                "attr": None,
                "type": "text",
                "formats": [],
                "regex": None,
                "required": True,
            }
        },
        "timezone": "UTC",
        "ignore_params": [],
    }


@pytest.mark.parametrize(
    "data",
    [
        BOARD_RULES,
        {"items": ["a.item"]},
        {"follow": ["nav a"], "fields": {"title": {"css": "h1", "regex": "(?i)notice: (.+)"}}},
    ],
)
def test_round_trip(data):
    rules = rules_parse(data)

    dumped = rules_dump(rules)

    assert rules_parse(dumped) == rules
    assert rules_dump(rules_parse(dumped)) == dumped


def test_rules_are_immutable_hashable_and_picklable():
    rules = rules_parse(BOARD_RULES)

    with pytest.raises(AttributeError):
        rules.follow = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        rules.fields["title"] = rules.fields["views"]  # type: ignore[index]
    assert hash(rules) == hash(rules_parse(copy.deepcopy(BOARD_RULES)))
    assert pickle.loads(pickle.dumps(rules)) == rules  # noqa: S301 - our own bytes


def test_parsing_does_not_modify_the_input():
    data = copy.deepcopy(BOARD_RULES)

    rules_parse(data)

    assert data == BOARD_RULES


def test_regex_flags_written_inline_survive_the_round_trip():
    rules = rules_parse({"fields": {"title": {"css": "h1", "regex": "(?i)title: (.+)"}}})

    pattern = rules_parse(rules_dump(rules)).fields["title"].regex
    assert pattern is not None
    assert pattern.pattern == "(?i)title: (.+)"
    assert pattern.search("TITLE: Road works").group(1) == "Road works"


# --- Bounds and what RE2 cannot run ----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path", "expected"),
    [
        (
            with_field("amount", {"css": "td", "type": "decimal", "regex": r"(?<=KRW )(\d+)"}),
            "fields.amount.regex",
            "lookbehind (?<=...) is not supported; use a group instead",
        ),
        (
            with_field("notes", {"css": "td", "regex": r"(\d+)(?= won)"}),
            "fields.notes.regex",
            "lookahead (?=...) is not supported",
        ),
        (
            with_field("notes", {"css": "td", "regex": r"(\w)\1"}),
            "fields.notes.regex",
            r"backreferences such as \1 are not supported",
        ),
        (
            with_field("notes", {"css": "td", "regex": r"[\W]+"}),
            "fields.notes.regex",
            r"\W inside [...] is not supported",
        ),
        (
            with_field("notes", {"css": "td", "regex": "x" * 1001}),
            "fields.notes.regex",
            "notes.regex is 1001 characters long; at most 1000 are allowed",
        ),
        (
            with_field("notes", {"css": "td " * 400}),
            "fields.notes.css",
            "CSS selector is 1200 characters long; at most 1000 are allowed",
        ),
        (
            with_changes(follow=["a"] * 21),
            "follow",
            "follow has 21 selectors; at most 20 are allowed",
        ),
        (
            with_changes(items=["td a"] * 21),
            "items",
            "items has 21 selectors; at most 20 are allowed",
        ),
        (
            with_changes(items=["div:has(p:has(span))"]),
            "items[0]",
            "nested :has() in 'div:has(p:has(span))' is not supported",
        ),
        (
            with_changes(fields={"title": "h1", **{f"f{i}": "td" for i in range(50)}}),
            "fields",
            "fields has 51 fields; at most 50 are allowed",
        ),
    ],
)
def test_rules_beyond_the_bounds_or_re2_are_refused_at_their_path(data, path, expected):
    errors = errors_of(data)

    assert path in errors, errors
    assert expected in errors[path]


def test_bounds_come_from_the_settings(settings):
    settings.RULES_MAX_FIELDS = 2
    settings.RULES_MAX_REGEX_LENGTH = 5

    errors = errors_of({"fields": {"title": {"css": "h1", "regex": "(.{1,9})"}}})
    assert errors == {
        "fields.title.regex": "title.regex is 8 characters long; at most 5 are allowed"
    }
    errors = errors_of({"fields": {"title": "h1", "a": "p", "b": "p"}})
    assert errors == {"fields": "fields has 3 fields; at most 2 are allowed"}


def test_one_has_is_allowed_and_so_are_the_largest_bounded_rules():
    data = {
        "follow": ["nav a"] * 20,
        "items": ["tr:has(td.subject) a"] * 20,
        "fields": {"title": {"css": "h1", "regex": "(" + "x" * 998 + ")"}}
        | {f"f{i}": {"css": "td" + " " * 996 + "p"} for i in range(49)},
    }
    rules = rules_parse(data)

    assert len(rules.fields) == 50
    assert rules.items[0] == "tr:has(td.subject) a"


def test_regexes_keep_their_unicode_meaning_on_re2():
    rules = rules_parse(
        {
            "fields": {
                "title": {"css": "h1", "regex": r"공고\s*:\s*(\w+)"},
                "views": {"css": "td", "regex": r"조회\s*(\d+)"},
                "reference": {"css": "td", "regex": r"([\w-]+)호"},
            }
        }
    )
    fields = rules.fields

    assert fields["title"].regex.search("공고 : 도로공사 안내").group(1) == "도로공사"
    assert fields["views"].regex.search("조회 1234회").group(1) == "1234"
    assert fields["reference"].regex.search("제2026-118호").group(1) == "제2026-118"
    # A catastrophic pattern for a backtracking engine answers at once on RE2.
    hostile = rules_parse({"fields": {"title": {"css": "h1", "regex": "(a+)+$"}}})
    assert hostile.fields["title"].regex.search("a" * 100_000 + "!") is None


def test_rules_with_re2_patterns_pickle_and_hash_as_their_text():
    rules = rules_parse(BOARD_RULES)
    again = pickle.loads(pickle.dumps(rules))  # noqa: S301 - our own object

    assert again == rules
    assert hash(again) == hash(rules)
    assert again.fields["reference"].regex.search("공고번호: R-1").group(1) == "R-1"


@pytest.mark.parametrize(
    ("values", "path", "expected"),
    [
        (["/notice/(?!draft)"], "include_patterns[0]", "negative lookahead (?!...)"),
        (["ok", "(unclosed"], "include_patterns[1]", "'(unclosed' does not compile"),
        (["x" * 1001], "include_patterns[0]", "is 1001 characters long"),
        (["a"] * 21, "include_patterns", "include_patterns has 21 patterns; at most 20"),
    ],
)
def test_url_patterns_are_checked_by_path(values, path, expected):
    errors = patterns_check("include_patterns", values)

    assert path in errors, errors
    assert expected in errors[path]
