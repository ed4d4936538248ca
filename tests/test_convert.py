"""Typed field conversions: dates, datetimes (time zones), numbers, amounts, regexes."""

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from crawls.engine.extract import DATE_FORMATS, DATETIME_FORMATS, Page, convert
from crawls.engine.rules import FieldRule, rules_parse

SEOUL = ZoneInfo("Asia/Seoul")
LONDON = ZoneInfo("Europe/London")


def field_rule(type_: str, *, formats=(), regex=None, name="value", required=False) -> FieldRule:
    spec: dict = {"css": "td", "type": type_, "formats": list(formats)}
    if regex is not None:
        spec["regex"] = regex
    if name == "title":
        required = True
    spec["required"] = required
    fields = {name: spec} if name == "title" else {"title": "h1", name: spec}
    return rules_parse({"fields": fields}).fields[name]


# --- conversions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_", "raw", "kwargs", "expected"),
    [
        ("text", "  공고 \n\t 제목\u00a0 ", {}, "공고 제목"),
        ("text", "공고번호: R-26-1 (정정)", {"regex": r"공고번호:\s*(\S+)"}, "R-26-1"),
        ("text", "ref 2026-118 final", {"regex": r"\d{4}-\d+"}, "2026-118"),
        ("int", "1,234", {}, 1234),
        ("int", "조회수 1,234", {}, 1234),
        ("int", "1 234", {}, 1234),
        ("int", "1\u00a0234 views", {}, 1234),
        ("int", "7", {}, 7),
        ("int", "1,234.00", {}, 1234),
        ("int", "Views: 12 (today 3)", {"regex": r"Views: (\d+)"}, 12),
        ("decimal", "₩1,234,500,000", {}, Decimal("1234500000")),
        ("decimal", "KRW 12,345,000", {}, Decimal("12345000")),
        ("decimal", "12,345.50원", {}, Decimal("12345.50")),
        ("decimal", "추정가격: 0.5 억원", {}, Decimal("0.5")),
        ("date", "2026-11-23", {}, date(2026, 11, 23)),
        ("date", "2026.11.23", {}, date(2026, 11, 23)),
        ("date", "2026.11.23.", {}, date(2026, 11, 23)),
        ("date", "2026/11/23", {}, date(2026, 11, 23)),
        ("date", "2026년 11월 23일", {}, date(2026, 11, 23)),
        ("date", "2026년 1월 5일", {}, date(2026, 1, 5)),
        ("date", "2026년11월23일", {}, date(2026, 11, 23)),
        ("date", "23 Nov 2026", {}, date(2026, 11, 23)),
        ("date", "Nov 23, 2026", {}, date(2026, 11, 23)),
        ("date", "23 November 2026", {}, date(2026, 11, 23)),
        ("date", "2026-11-23 14:05", {}, date(2026, 11, 23)),
        ("date", "23/11/2026", {"formats": ["%d/%m/%Y"]}, date(2026, 11, 23)),
        ("date", "등록일 2026-11-23", {"regex": r"\d{4}-\d\d-\d\d"}, date(2026, 11, 23)),
        ("datetime", "2026-11-23 14:05", {}, datetime(2026, 11, 23, 14, 5, tzinfo=SEOUL)),
        ("datetime", "2026-11-23 14:05:09", {}, datetime(2026, 11, 23, 14, 5, 9, tzinfo=SEOUL)),
        ("datetime", "2026.11.23 14:05", {}, datetime(2026, 11, 23, 14, 5, tzinfo=SEOUL)),
        ("datetime", "2026.11.23. 14:05", {}, datetime(2026, 11, 23, 14, 5, tzinfo=SEOUL)),
        ("datetime", "2026/11/23 14:05", {}, datetime(2026, 11, 23, 14, 5, tzinfo=SEOUL)),
        ("datetime", "2026-11-23T14:05:00", {}, datetime(2026, 11, 23, 14, 5, tzinfo=SEOUL)),
        ("datetime", "2026-11-23T05:05:00Z", {}, datetime(2026, 11, 23, 5, 5, tzinfo=UTC)),
        (
            "datetime",
            "2026-11-23T14:05+09:00",
            {},
            datetime(2026, 11, 23, 14, 5, tzinfo=timezone(timedelta(hours=9))),
        ),
        ("datetime", "2026-11-23", {}, datetime(2026, 11, 23, 0, 0, tzinfo=SEOUL)),
        ("datetime", "2026.11.23.", {}, datetime(2026, 11, 23, 0, 0, tzinfo=SEOUL)),
        ("datetime", "2026년 11월 23일", {}, datetime(2026, 11, 23, 0, 0, tzinfo=SEOUL)),
        (
            "datetime",
            "23.11.2026 14시 05분",
            {"formats": ["%d.%m.%Y %H시 %M분"]},
            datetime(2026, 11, 23, 14, 5, tzinfo=SEOUL),
        ),
        (
            "datetime",
            "Nov 23, 2026 2:05 PM",
            {"formats": ["%b %d, %Y %I:%M %p"]},
            datetime(2026, 11, 23, 14, 5, tzinfo=SEOUL),
        ),
    ],
)
def test_convert(type_, raw, kwargs, expected):
    value = convert(raw, field_rule(type_, **kwargs), SEOUL)

    assert value == expected
    assert type(value) is type(expected)
    if isinstance(expected, datetime):
        assert value.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("type_", "raw", "kwargs", "message"),
    [
        ("int", "many", {}, "cannot read 'many' as int: no number in it"),
        (
            "int",
            "조회 12 / 댓글 3",
            {},
            "cannot read '조회 12 / 댓글 3' as int: several numbers (12, 3); "
            "add a regex with one group to pick one",
        ),
        ("int", "1.5", {}, "cannot read '1.5' as int: 1.5 is not a whole number"),
        ("int", "2026-11-23", {}, "several numbers (2026, -11, -23)"),
        ("decimal", "   ", {}, "cannot read an empty value as decimal"),
        ("decimal", "미정", {}, "cannot read '미정' as decimal: no number in it"),
        (
            "date",
            "12 Dec",
            {"formats": ["%Y-%m-%d"]},
            "cannot read '12 Dec' as date with formats ['%Y-%m-%d']",
        ),
        (
            "date",
            "2026-02-30",
            {},
            f"cannot read '2026-02-30' as date with formats "
            f"{['ISO 8601', *DATE_FORMATS, *DATETIME_FORMATS]}",
        ),
        (
            "datetime",
            "tomorrow",
            {},
            f"cannot read 'tomorrow' as datetime with formats "
            f"{['ISO 8601', *DATETIME_FORMATS, *DATE_FORMATS]}",
        ),
        (
            "datetime",
            "2026-11-23 25:00",
            {"formats": ["%Y-%m-%d %H:%M"]},
            "cannot read '2026-11-23 25:00' as datetime with formats ['%Y-%m-%d %H:%M']",
        ),
        (
            "text",
            "nothing here",
            {"regex": r"No\. (\d+)"},
            "regex 'No\\\\. (\\\\d+)' does not match",
        ),
        ("int", "x" * 200, {}, "cannot read '" + "x" * 77 + "...' as int"),
    ],
)
def test_convert_failures_say_what_was_expected(type_, raw, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        convert(raw, field_rule(type_, **kwargs), SEOUL)


def test_naive_datetimes_take_the_zone_offset_of_their_own_date():
    rule = field_rule("datetime")

    winter = convert("2026-01-15 12:00", rule, LONDON)
    summer = convert("2026-07-15 12:00", rule, LONDON)

    assert winter.utcoffset() == timedelta(0)
    assert summer.utcoffset() == timedelta(hours=1)
    assert summer.astimezone(UTC) == datetime(2026, 7, 15, 11, 0, tzinfo=UTC)


def test_an_aware_iso_value_read_as_a_date_uses_the_rules_zone():
    value = convert("2026-11-23T20:00:00Z", field_rule("date"), SEOUL)

    assert value == date(2026, 11, 24)


def test_page_defaults():
    assert Page() == Page(follow=[], items=[], fields=None, errors={}, canonical=None)
