"""Keeping secrets and huge values out of reprs, logs and error messages.

Two rules, used by every repr and log line that shows what a caller or a request gave:

- a value that looks like a credential (``Authorization``, ``Cookie``, ``X-Api-Key``, ``*-Token``,
  ``*-Secret``..., or a URL query parameter named like one) is replaced by ``'***'``: its length is all
  that shows;
- any other value is shown truncated to a few dozen characters, so a 1 MB header or token part writes a
  short log line, not a 1 MB one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit, urlunsplit

__all__ = ["REDACTED", "is_secret_name", "redact_headers", "redact_url", "shorten"]

REDACTED = "***"
DEFAULT_LIMIT = 80

_SECRET_NAMES = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-goog-iap-jwt-assertion"}
)
# Names that say "this is a credential" wherever they appear in a header or query parameter name:
# x-api-key, api_key, x-auth-token, client-secret, password, x-hub-signature, session ids, "key=" (Google
# API keys travel as ?key=...).
_SECRET_PARTS = re.compile(
    r"(^|[-_.])(api[-_]?key|key|token|secret|password|passwd|pwd|credentials?|signature|session(id)?|"
    r"auth|sig|jwt|assertion)($|[-_.])",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """True if a header or query parameter of this name carries a credential."""
    lowered = name.strip().lower()
    return lowered in _SECRET_NAMES or bool(_SECRET_PARTS.search(lowered))


def shorten(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """``repr(value)`` cut to about ``limit`` characters, saying how long it was."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        # Cut before repr(): the repr of a megabyte-long value costs a megabyte.
        unit = "chars" if isinstance(value, str) else "bytes"
        return f"{value[:limit]!r}...({len(value)} {unit} in all)"
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not break a log line
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars in all)"


def redact_headers(headers: Iterable[tuple[str, str]] | Mapping[str, str], limit: int = 40) -> dict[str, str]:
    """Headers fit to show: credential values replaced by ``'***'``, the rest truncated."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    shown: dict[str, str] = {}
    for name, value in items:
        key = name if len(name) <= limit else name[:limit] + "..."
        if is_secret_name(name):
            shown[key] = REDACTED
        else:
            shown[key] = value if len(value) <= limit else f"{value[:limit]}...(+{len(value) - limit} chars)"
    return shown


def redact_url(url: str, limit: int = 120) -> str:
    """A URL fit to show: user info and credential-named query values replaced, the whole truncated."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return shorten(url, limit)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_name(name) for name, _ in pairs):
            query = "&".join(f"{name}={REDACTED if is_secret_name(name) else value}" for name, value in pairs)
    shown = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return shown if len(shown) <= limit else f"{shown[:limit]}...(+{len(shown) - limit} chars)"
