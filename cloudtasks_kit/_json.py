"""Parsing JSON from strangers: UTF-8 only, and no deeper than a limit, checked before parsing.

``json.loads`` recurses once per nesting level, so ``[[[[...]]]]`` a few thousand deep raises
RecursionError (and pydantic recurses again while validating). :func:`loads` measures the nesting first
with a scan that does not recurse, and refuses what is too deep with a :class:`JSONError` saying so.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
from typing import Any

__all__ = ["NO_JSON", "JSONError", "depth", "loads"]

NO_JSON: Any = object()
"""Marks "no json= given" where ``json=None`` means a JSON null body."""

# A JSON string, escapes included: brackets inside strings do not nest anything.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[^\[\]{}]+")
# Opening brackets count 2 and closing ones 0, so that a running sum minus the position is the depth.
_STEP = str.maketrans({"[": "\x02", "{": "\x02", "]": "\x00", "}": "\x00"})


class JSONError(ValueError):
    """Not JSON, not UTF-8, or nested deeper than allowed; the message says which."""


def depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (0 for a scalar), without recursing."""
    brackets = _BRACKETS.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    steps = brackets.translate(_STEP).encode("latin-1")
    # depth after the i-th bracket (1-based) = (sum of steps so far) - i; all in C, no Python loop.
    peak: int = max(map(operator.sub, itertools.accumulate(steps), itertools.count(1)))
    return max(peak, 0)


def loads(data: bytes | str, *, max_depth: int, what: str = "the body") -> Any:
    """Parse ``data`` as JSON nested at most ``max_depth`` deep; a :class:`JSONError` otherwise."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONError(f"{what} is not UTF-8 (bad byte at offset {exc.start})") from None
    else:
        text = data
    found = depth(text)
    if found > max_depth:
        raise JSONError(f"{what} nests {found} levels deep; the limit is {max_depth}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise JSONError(f"{what} is not JSON") from None
