"""A task function's arguments as JSON, checked against its annotations with pydantic, both ways.

At enqueue time the arguments are bound to the signature and validated (a wrong argument fails in the
caller, not later in the worker), then dumped to JSON. In the worker the JSON is validated back into the
annotated types: pydantic models, dataclasses, datetimes, enums, UUIDs and decimals come back as what
they were. Never pickle.

The envelope is versioned: ``{"v": 1, "task": "send_email", "args": {"to": "ada@example.com"}}``.
Only the arguments the caller gave are sent; defaults are the worker's.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

import pydantic
import pydantic_core

from . import _json
from ._redact import shorten
from .errors import UsageError, ValidationError

__all__ = ["ENVELOPE_VERSION", "ArgumentCodec", "EnvelopeError"]

ENVELOPE_VERSION = 1


class EnvelopeError(ValueError):
    """A request body that is not a task envelope the worker understands."""


class ArgumentCodec:
    """Validates, dumps and loads the arguments of one function."""

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.name = name
        self.signature = inspect.signature(fn)
        try:
            hints = typing.get_type_hints(fn)
        except Exception as exc:  # a name only imported under TYPE_CHECKING, a local class...
            raise UsageError(
                f"the annotations of task function {name} cannot be resolved ({type(exc).__name__}: {exc}); "
                "the worker validates arguments against them, so their types must be importable"
            ) from None
        fields: dict[str, Any] = {}
        for param in self.signature.parameters.values():
            annotation = hints.get(param.name, Any)
            if param.kind is param.VAR_POSITIONAL:
                fields[param.name] = (list[annotation], [])  # type: ignore[valid-type]
            elif param.kind is param.VAR_KEYWORD:
                fields[param.name] = (dict[str, annotation], {})  # type: ignore[valid-type]
            else:
                default = ... if param.default is param.empty else param.default
                fields[param.name] = (annotation, default)
        config = pydantic.ConfigDict(extra="forbid")
        try:
            self.model: type[pydantic.BaseModel] = pydantic.create_model(
                f"{name}_arguments", __config__=config, **fields
            )
        except pydantic.PydanticSchemaGenerationError as exc:
            raise UsageError(
                f"task function {name} has an argument type pydantic cannot turn into JSON and back: {exc}"
            ) from None

    def dump(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON-ready arguments of a call; a ValidationError names the bad argument."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ValidationError(
                f"arguments of {self.name}", _call_repr(args, kwargs), f"do not fit its signature: {exc}"
            ) from None
        try:
            validated = self.model.model_validate(dict(bound.arguments))
        except pydantic.ValidationError as exc:
            raise self._error(exc, dict(bound.arguments)) from None
        try:
            return dict(validated.model_dump(mode="json", exclude_unset=True))
        except pydantic_core.PydanticSerializationError as exc:
            raise ValidationError(
                f"arguments of {self.name}", _call_repr(args, kwargs), f"are not JSON-serialisable: {exc}"
            ) from None

    def load(self, data: Any) -> tuple[list[Any], dict[str, Any]]:
        """Arguments from JSON, as the function takes them; raises pydantic's ValidationError."""
        validated = self.model.model_validate(data)
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for param in self.signature.parameters.values():
            value = getattr(validated, param.name)
            if param.kind is param.POSITIONAL_ONLY:
                args.append(value)
            elif param.kind is param.VAR_POSITIONAL:
                args.extend(value)
            elif param.kind is param.VAR_KEYWORD:
                kwargs.update(value)
            else:
                kwargs[param.name] = value
        return args, kwargs

    def _error(self, exc: pydantic.ValidationError, given: dict[str, Any]) -> ValidationError:
        first = exc.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        argument = str(first["loc"][0]) if first["loc"] else ""
        value = given.get(argument, first.get("input"))
        if first["type"] == "missing":
            return ValidationError(f"{self.name} argument {location!r}", None, "is required")
        return ValidationError(f"{self.name} argument {location!r}", value, f"is not valid: {first['msg']}")


def encode_envelope(task_name: str, arguments: dict[str, Any]) -> bytes:
    return pydantic_core.to_json({"v": ENVELOPE_VERSION, "task": task_name, "args": arguments})


DEFAULT_MAX_DEPTH = 64
"""How deep a body's JSON may nest: ample for arguments, far from Python's recursion limit."""


def decode_envelope(body: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> tuple[str, Any]:
    """``(task name, raw arguments)`` from a request body; :class:`EnvelopeError` says what is wrong.

    The body must be UTF-8 JSON nested at most ``max_depth`` deep (checked before parsing, so a body of
    ten thousand ``[`` is refused, not a RecursionError).
    """
    try:
        envelope = _json.loads(body, max_depth=max_depth)
    except _json.JSONError as exc:
        raise EnvelopeError(str(exc)) from None
    if not isinstance(envelope, dict):
        raise EnvelopeError("the body is not a JSON object")
    version = envelope.get("v")
    if version != ENVELOPE_VERSION:
        raise EnvelopeError(f"envelope version {shorten(version, 20)} is not {ENVELOPE_VERSION}")
    name, arguments = envelope.get("task"), envelope.get("args")
    if not isinstance(name, str) or not isinstance(arguments, dict):
        raise EnvelopeError("the envelope needs 'task' (a string) and 'args' (an object)")
    return name, arguments


def _call_repr(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return "(" + ", ".join(parts) + ")"
