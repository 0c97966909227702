"""The environment variables that point the kit at a local emulator, and what they imply.

Kept apart from the facades so the receiving side (:mod:`cloudtasks_kit.verify`) can read them without
loading the official client.

- ``CLOUDTASKS_EMULATOR_HOST`` (``host:port``): the emulator's gRPC address. Clients then talk to it in
  plaintext with no credentials, and need no project or location: :data:`EMULATOR_PROJECT` and
  :data:`EMULATOR_LOCATION` stand in, the same defaults as ``cloudtasks-kit emulator --queue NAME``.
- ``CLOUDTASKS_EMULATOR_REST_HOST`` (``host:port`` or a URL): its REST address (default: the gRPC port + 1).
- ``CLOUDTASKS_HANDLER_TRUST_EMULATOR=1``: a :class:`~cloudtasks_kit.TaskHandler` verifies tokens with the
  emulator's certificates instead of Google's; honoured only beside one of the two above, and never on a
  Google runtime (see :func:`cloudtasks_kit.verify.emulator_certs_url`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

EMULATOR_HOST_ENV = "CLOUDTASKS_EMULATOR_HOST"
EMULATOR_REST_HOST_ENV = "CLOUDTASKS_EMULATOR_REST_HOST"
TRUST_EMULATOR_ENV = "CLOUDTASKS_HANDLER_TRUST_EMULATOR"

EMULATOR_PROJECT = "local-project"
"""The project a client uses with the emulator when none is given (the emulator's own default)."""
EMULATOR_LOCATION = "us-central1"
"""The location a client uses with the emulator when none is given (the emulator's own default)."""


def emulator_addresses(
    emulator_host: str | None = None, environ: Mapping[str, str] | None = None
) -> tuple[str | None, str | None]:
    """The emulator's gRPC and REST addresses, from the argument or the environment (None: not set)."""
    env = os.environ if environ is None else environ
    host = emulator_host or env.get(EMULATOR_HOST_ENV) or None
    rest = env.get(EMULATOR_REST_HOST_ENV) or None
    return host, rest


def rest_url(emulator_host: str | None, emulator_rest_host: str | None) -> str:
    """The emulator's REST base URL: ``emulator_rest_host``, else the gRPC host with port + 1."""
    if emulator_rest_host:
        return emulator_rest_host if "://" in emulator_rest_host else f"http://{emulator_rest_host}"
    if not emulator_host:
        raise ValueError("the emulator's REST address needs its gRPC or its REST host")
    host, _, port = emulator_host.rpartition(":")
    return f"http://{host}:{int(port) + 1}"
