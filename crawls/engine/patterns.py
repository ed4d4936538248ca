"""Users' regular expressions (field regexes, include/exclude URL patterns), run on RE2.

RE2 matches in time linear in the text, whatever the pattern: no pattern a user writes can stall
a process the way ``(a+)+$`` stalls Python's ``re``. It has no lookarounds or backreferences; a
pattern using them is refused with a message saying what to write instead. Python's ``\\w`` and
``\\d`` match Unicode letters and digits (Hangul too) while RE2's match ASCII only, so they are
rewritten to the Unicode classes ``[\\p{L}\\p{N}_]`` and ``\\p{Nd}`` to keep their meaning. Pure
Python (no Django).
"""

from __future__ import annotations

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # errors become messages for the user, not lines on stderr

# What Python's re accepts and RE2 does not, with what to write instead.
_UNSUPPORTED: tuple[tuple[str, str], ...] = (
    ("(?<=", "lookbehind (?<=...) is not supported; use a group instead"),
    ("(?<!", "negative lookbehind (?<!...) is not supported; use a group instead"),
    ("(?=", "lookahead (?=...) is not supported; use a group instead"),
    ("(?!", "negative lookahead (?!...) is not supported; match what you want with a group"),
    ("(?P=", "backreferences (?P=name) are not supported"),
    ("(?>", "atomic groups (?>...) are not supported; write the group without ?>"),
    ("(?(", "conditional groups (?(...)...) are not supported"),
)
# Outside [...] / inside [...]: the Unicode meaning Python's re gives these classes.
_UNICODE_CLASSES = {
    "w": (r"[\p{L}\p{N}_]", r"\p{L}\p{N}_"),
    "W": (r"[^\p{L}\p{N}_]", None),  # a negated union cannot be written inside [...]
    "d": (r"\p{Nd}", r"\p{Nd}"),
    "D": (r"\P{Nd}", r"\P{Nd}"),
}


class PatternError(ValueError):
    """A pattern RE2 cannot run; the message says why and what to write instead."""


class Regex:
    """A user's pattern compiled for RE2 once; compares, hashes and pickles as its text."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        try:
            self._compiled = re2.compile(_translate(pattern), _OPTIONS)
        except re2.error as exc:
            raise PatternError(_problem(pattern, exc)) from None

    @property
    def groups(self) -> int:
        return self._compiled.groups

    def search(self, text: str):
        """The first match in text (a match object with group()), or None."""
        return self._compiled.search(text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Regex) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(("Regex", self.pattern))

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"

    def __reduce__(self):
        return (Regex, (self.pattern,))


def _problem(pattern: str, exc: re2.error) -> str:
    for marker, message in _UNSUPPORTED:
        if marker in pattern:
            return message
    if _backreference(pattern):
        return r"backreferences such as \1 are not supported"
    reason = exc.args[0] if exc.args else ""
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    return f"does not compile: {reason}"


def _backreference(pattern: str) -> bool:
    escaped = False
    for char in pattern:
        if escaped and char in "123456789":
            return True
        escaped = not escaped and char == "\\"
    return False


def _translate(pattern: str) -> str:
    r"""pattern with \w \W \d \D rewritten to their Unicode classes (see the module docstring)."""
    out: list[str] = []
    in_class = False
    index, size = 0, len(pattern)
    while index < size:
        char = pattern[index]
        if char == "\\" and index + 1 < size:
            following = pattern[index + 1]
            if following == "Q":  # \Q...\E is literal text: copy it as it is
                end = pattern.find("\\E", index + 2)
                end = size if end < 0 else end + 2
                out.append(pattern[index:end])
                index = end
                continue
            if following in _UNICODE_CLASSES:
                outside, inside = _UNICODE_CLASSES[following]
                if in_class and inside is None:
                    raise PatternError(rf"\{following} inside [...] is not supported; use [^...]")
                out.append(inside if in_class else outside)
            else:
                out.append(pattern[index : index + 2])
            index += 2
            continue
        if in_class:
            if char == "]":
                in_class = False
            elif char == "[" and pattern.startswith("[:", index):  # [[:alpha:]]
                end = pattern.find(":]", index + 2)
                if end > 0:
                    out.append(pattern[index : end + 2])
                    index = end + 2
                    continue
        elif char == "[":
            in_class = True
            out.append(char)
            index += 1
            # A ] right after [ or [^ is a literal ].
            if pattern.startswith("^", index):
                out.append("^")
                index += 1
            if pattern.startswith("]", index):
                out.append("]")
                index += 1
            continue
        out.append(char)
        index += 1
    return "".join(out)
