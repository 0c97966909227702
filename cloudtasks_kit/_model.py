"""The base of the kit's pydantic value types: frozen, and raising the kit's own ValidationError."""

from __future__ import annotations

from typing import Any

import pydantic
from typing_extensions import Self

from ._redact import REDACTED, is_secret_name
from .errors import ValidationError


class KitModel(pydantic.BaseModel):
    """Frozen pydantic model whose validation errors are :class:`~cloudtasks_kit.ValidationError`.

    Rules checked in validators raise the kit's error themselves, which comes out unchanged; type errors
    found by pydantic come out as a ValidationError naming the field, the value and pydantic's rule.
    """

    model_config = pydantic.ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        ser_json_bytes="base64",
        val_json_bytes="base64",
        ser_json_timedelta="float",
        defer_build=True,  # build validators on first use: importing the kit stays cheap
    )

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise kit_error(exc) from None

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, **kwargs)
        except pydantic.ValidationError as exc:
            raise kit_error(exc) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        try:
            return super().model_validate_json(json_data, **kwargs)
        except pydantic.ValidationError as exc:
            raise kit_error(exc) from None


def kit_error(exc: pydantic.ValidationError) -> ValidationError:
    """The first error of a pydantic ValidationError as the kit's ValidationError."""
    first = exc.errors()[0]
    inner = (first.get("ctx") or {}).get("error")
    if isinstance(inner, ValidationError):
        return inner
    loc = first["loc"]
    field = ".".join(str(part) for part in loc) or exc.title
    rule = first["msg"]
    given = first.get("input")
    if len(loc) >= 2 and loc[-2] == "headers" and is_secret_name(str(loc[-1])):
        given = REDACTED  # headers.Authorization, headers.X-Api-Key...: a credential, never shown
    if first["type"] == "extra_forbidden":
        rule = "is not a known field"
        return ValidationError(field, given, rule)
    if first["type"] == "missing":
        return ValidationError(field, None, "is required")
    return ValidationError(field, given, f"is not valid: {rule[:1].lower()}{rule[1:]}")
