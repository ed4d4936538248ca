"""Values of the procurement columns as Forest stores them, whatever a source writes.

- ``currency_code``: an ISO 4217 code (pycountry's list) from a code, a symbol or a local name
  ("KRW", "krw", "₩", "원", "US$", "€"), or from the text around an amount
  ("4,477,000,000 KRW", "₩ 1,000", "1,000원").
- ``status_code``: one of STATUSES from OCDS tender statuses and the words boards use
  ("공고중", "취소", "Cancelled", "open"), with a user's own map first.
- ``classification_codes``: "SCHEME:ID" strings from OCDS classification objects or text.
Pure Python (no Django).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

import pycountry

STATUSES = ("active", "cancelled", "awarded", "closed", "unknown")
UNKNOWN = "unknown"

# Symbols and local names that stand for one currency on the boards Forest reads.
_CURRENCY_WORDS = {
    "₩": "KRW", "원": "KRW", "￦": "KRW", "won": "KRW",
    "$": "USD", "us$": "USD", "usd$": "USD", "달러": "USD",
    "€": "EUR", "euro": "EUR", "euros": "EUR", "유로": "EUR",
    "£": "GBP", "¥": "JPY", "円": "JPY", "엔": "JPY", "元": "CNY", "rmb": "CNY",
    "₹": "INR", "rs": "INR", "₽": "RUB", "₺": "TRY", "₫": "VND", "₱": "PHP",
    "r$": "BRL", "a$": "AUD", "c$": "CAD", "nz$": "NZD", "hk$": "HKD", "s$": "SGD",
    "chf": "CHF", "zł": "PLN",
}  # fmt: skip
_CODE = re.compile(r"(?<![A-Za-z])([A-Za-z]{3})(?![A-Za-z])")

# OCDS tender.status codes and the words boards write, by the status Forest stores.
_STATUS_WORDS: Mapping[str, tuple[str, ...]] = {
    "active": (
        "active", "open", "planning", "planned", "published", "ongoing", "in progress",
        "공고", "공고중", "진행", "진행중", "입찰중", "접수중", "게시", "게시중",
    ),
    "cancelled": (
        "cancelled", "canceled", "cancel", "withdrawn", "취소", "공고취소", "입찰취소", "철회",
    ),
    "awarded": ("awarded", "complete", "completed", "낙찰", "계약", "계약완료", "선정", "낙찰완료"),
    "closed": (
        "closed", "unsuccessful", "expired", "ended", "finished", "마감", "종료", "유찰",
        "입찰마감", "접수마감", "완료",
    ),
}  # fmt: skip
_STATUS_OF = {word: status for status, words in _STATUS_WORDS.items() for word in words}


@lru_cache(maxsize=1)
def _iso_codes() -> frozenset[str]:
    return frozenset(currency.alpha_3 for currency in pycountry.currencies)


def is_currency(code: str) -> bool:
    return code in _iso_codes()


def currency_code(text: object) -> str | None:
    """The ISO 4217 code `text` names or carries beside an amount; None when it names none."""
    if not isinstance(text, str):
        return None
    stripped = text.strip()
    if not stripped:
        return None
    if stripped.upper() in _iso_codes():
        return stripped.upper()
    word = stripped.lower()
    if word in _CURRENCY_WORDS:
        return _CURRENCY_WORDS[word]
    for match in _CODE.finditer(stripped):
        if match.group(1).upper() in _iso_codes() and match.group(1).isupper():
            return match.group(1)
    # Longest symbols first, so "US$" wins over "$".
    for symbol in sorted(_CURRENCY_WORDS, key=len, reverse=True):
        if not symbol.isascii() and symbol in stripped:
            return _CURRENCY_WORDS[symbol]
    for symbol in ("us$", "r$", "a$", "c$", "nz$", "hk$", "s$", "$"):
        if symbol in word:
            return _CURRENCY_WORDS[symbol]
    return None


def status_code(text: object, mapping: Mapping[str, str] | None = None) -> str:
    """The stored status of a status text: the user's map first (exact, then case-blind), then
    OCDS codes and common board words; "unknown" when nothing matches."""
    if not isinstance(text, str):
        return UNKNOWN
    value = " ".join(text.split())
    if mapping:
        if value in mapping:
            return mapping[value]
        folded = {k.casefold(): v for k, v in mapping.items()}
        if value.casefold() in folded:
            return folded[value.casefold()]
    word = value.casefold()
    if word in _STATUS_OF:
        return _STATUS_OF[word]
    compact = word.replace(" ", "")
    return _STATUS_OF.get(compact, UNKNOWN)


def classification_codes(values: object) -> list[str]:
    """ "SCHEME:ID" codes, each once, in the given order: from OCDS classification objects
    ({"scheme": "CPV", "id": "45000000"}), from "SCHEME:ID" or bare-id strings, or from a text
    listing several (commas, semicolons or new lines between them)."""
    items: Iterable[object]
    if isinstance(values, str):
        items = re.split(r"[,;\n]", values)
    elif isinstance(values, Mapping):
        items = [values]
    elif isinstance(values, list | tuple):
        items = values
    else:
        return []
    codes: dict[str, None] = {}
    for item in items:
        code = None
        if isinstance(item, Mapping):
            ident = item.get("id")
            if ident is None or str(ident).strip() == "":
                continue
            scheme = str(item.get("scheme") or "").strip()
            code = f"{scheme}:{str(ident).strip()}" if scheme else str(ident).strip()
        elif isinstance(item, str | int):
            code = " ".join(str(item).split())
        if code:
            codes[code[:120]] = None
    return list(codes)
