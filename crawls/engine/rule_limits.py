"""The bounds users' rules are held to (``Limits``, from the RULES_MAX_* settings) and the error
that lists every problem of a rules document by its path (``RulesError``): the ground every
rules module (HTML, fields, links, json/xml, ocds) stands on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Limits:
    """Bounds on what rules may ask for (defaults as in project/settings.py)."""

    regex_length: int = 1000
    selector_length: int = 1000
    fields: int = 50
    selectors: int = 20  # follow and items, each
    patterns: int = 20  # a source's include_patterns and exclude_patterns, each
    # Entries of a request template's form/query/headers (and of each JSON object or list in
    # its body) and of a field's map. Not a setting: 50 is plenty, and bounds the work.
    entries: int = 50

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            regex_length=settings.RULES_MAX_REGEX_LENGTH,
            selector_length=settings.RULES_MAX_SELECTOR_LENGTH,
            fields=settings.RULES_MAX_FIELDS,
            selectors=settings.RULES_MAX_SELECTORS,
            patterns=settings.RULES_MAX_PATTERNS,
        )


class RulesError(ValueError):
    """Invalid rules; ``errors`` maps each problem's path to a message naming what is expected."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: dict[str, str] = dict(errors)
        super().__init__("; ".join(f"{path}: {message}" for path, message in self.errors.items()))
