"""The token a task carries: OIDC for your own handlers, OAuth for Google APIs. One or the other.

Verifying the token on the receiving side lives in :mod:`cloudtasks_kit.verify`.
"""

from __future__ import annotations

from typing import Any

import pydantic

from . import rules
from ._model import KitModel
from .errors import ValidationError

__all__ = ["OAuthToken", "OidcToken", "check_one_token"]


def _check_account(value: str) -> str:
    if "@" not in value or value.startswith("@") or value.endswith("@") or any(c.isspace() for c in value):
        raise ValidationError("service_account_email", value, "must be an email address")
    return value


class OidcToken(KitModel):
    """Send ``Authorization: Bearer <Google-signed ID token>``: for Cloud Run, GKE, your own servers.

    ``audience`` defaults to the task's URL (the service fills it in); at queue level it is required.

    Example:
        ``OidcToken(service_account_email="tasks@my-project.iam.gserviceaccount.com")``
    """

    service_account_email: str
    audience: str | None = None

    @pydantic.field_validator("service_account_email")
    @classmethod
    def _account(cls, value: str) -> str:
        return _check_account(value)

    def fill(self, msg: Any) -> None:
        """Fill an official ``OidcToken`` protobuf."""
        msg.service_account_email = self.service_account_email
        if self.audience:
            msg.audience = self.audience

    @classmethod
    def from_pb(cls, msg: Any) -> OidcToken:
        return cls.model_construct(
            service_account_email=msg.service_account_email, audience=msg.audience or None
        )


class OAuthToken(KitModel):
    """Send an OAuth access token: only for targets on ``*.googleapis.com``.

    ``scope`` defaults to ``https://www.googleapis.com/auth/cloud-platform``.
    """

    service_account_email: str
    scope: str | None = None

    @pydantic.field_validator("service_account_email")
    @classmethod
    def _account(cls, value: str) -> str:
        return _check_account(value)

    def fill(self, msg: Any) -> None:
        """Fill an official ``OAuthToken`` protobuf."""
        msg.service_account_email = self.service_account_email
        msg.scope = self.scope or rules.CLOUD_PLATFORM_SCOPE

    @classmethod
    def from_pb(cls, msg: Any) -> OAuthToken:
        return cls.model_construct(service_account_email=msg.service_account_email, scope=msg.scope or None)


def check_one_token(oidc: OidcToken | None, oauth: OAuthToken | None, *, field: str = "task") -> None:
    """A task (or queue) carries one token or none, never both."""
    if oidc is not None and oauth is not None:
        raise ValidationError(
            f"{field} oidc and oauth",
            f"{oidc.service_account_email} / {oauth.service_account_email}",
            "cannot both be set: a task carries one token or none",
        )
