"""Numbers as the dashboard prints them: thousands separators, no ".00" on whole amounts, an
amount's currency code after it ("4,477,000,000 KRW")."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


@register.filter
def amount(value: object, currency: object = "") -> str:
    """492686000.00 → "492,686,000"; 1234.5 → "1,234.50"; None → ""; with a currency code
    (`bid.amount|amount:bid.currency`) 4477000000 → "4,477,000,000 KRW"."""
    if value is None or value == "":
        return ""
    figure = _figure(value)
    return f"{figure} {currency}" if currency else figure


def _figure(value: object) -> str:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    if not number.is_finite():
        return str(value)
    if number == number.to_integral_value():
        return f"{number:,.0f}"
    return f"{number:,.2f}"


@register.filter
def count(value: object) -> str:
    """12345 → "12,345"; None → ""."""
    if value is None or value == "":
        return ""
    try:
        return f"{int(str(value)):,}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def percent(value: object) -> str:
    """A share (0.95) as a percentage ("95%"): the quality report's coverage."""
    try:
        return f"{float(value) * 100:.0f}%"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


@register.filter
def get_item(mapping: object, key: str) -> object:
    """mapping[key], or None: a report's figures by field name."""
    return mapping.get(key) if isinstance(mapping, dict) else None
