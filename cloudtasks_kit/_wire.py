"""Reading a request body off WSGI and ASGI, never more than a cap.

The handler reads the body only after the request is authenticated, and then at most ``cap`` bytes: a
declared ``Content-Length`` over the cap is refused before a byte is read, and a body of unknown length
(chunked) is read until it passes the cap and no further. A 300 MiB POST costs the worker nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

__all__ = ["BodyError", "content_length", "read_asgi_body", "read_wsgi_body"]

_CHUNK = 64 * 1024
_MAX_LENGTH_DIGITS = 19  # fits in 63 bits; anything longer is over every cap anyway


class BodyError(Exception):
    """The body cannot be taken: ``status`` 413 (too large) or 400 (a malformed Content-Length)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def content_length(value: str | None, cap: int) -> int | None:
    """The declared length (None if not declared); a BodyError if malformed or over ``cap``."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise BodyError(400, f"Content-Length {value[:30]!r} is not a number of bytes (ASCII digits)")
    if len(text) > _MAX_LENGTH_DIGITS or int(text) > cap:
        raise BodyError(413, f"the body is {text[:30]} bytes; the limit is {cap}")
    return int(text)


def too_large(cap: int) -> BodyError:
    return BodyError(413, f"the body is over the limit of {cap} bytes")


def read_wsgi_body(environ: Mapping[str, Any], cap: int) -> bytes:
    """At most ``cap`` bytes of a WSGI request's body, or a BodyError."""
    length = content_length(environ.get("CONTENT_LENGTH"), cap)
    stream = environ["wsgi.input"]
    if length is None:
        # PEP 3333: without a Content-Length, reading is safe only where the server says the input ends
        # (gunicorn and others set wsgi.input_terminated for chunked bodies).
        if not environ.get("wsgi.input_terminated"):
            return b""
        return _read_until(stream.read, cap)
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(remaining, _CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_until(read: Callable[[int], bytes], cap: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > cap:
            raise too_large(cap)
        chunks.append(chunk)


async def read_asgi_body(
    receive: Callable[[], Awaitable[dict[str, Any]]], headers: Mapping[str, str], cap: int
) -> bytes | None:
    """At most ``cap`` bytes of an ASGI request's body; None if the client went away; or a BodyError."""
    declared = content_length(headers.get("content-length"), cap)
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        total += len(chunk)
        # Stop at the cap whatever the declared length said: the rest is never received.
        if total > cap or (declared is not None and total > declared):
            raise (
                too_large(cap)
                if total > cap
                else BodyError(400, "the body is longer than its Content-Length")
            )
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)
