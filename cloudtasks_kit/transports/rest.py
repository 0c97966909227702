"""The official client's REST transport (sync only: the official client has no async REST)."""

from __future__ import annotations

from typing import Any

from google.cloud import tasks_v2

from ._buffer import DEFAULT_REST_ENDPOINT, BufferClient
from .grpc import DEFAULT, ClientTransport, rest_endpoint

__all__ = ["RestTransport"]


class RestTransport(ClientTransport):
    """``tasks_v2.CloudTasksClient(transport="rest")``, plus BufferTask on the same endpoint.

    With ``emulator_host`` (the emulator's gRPC address) or ``emulator_rest_host`` it talks plain HTTP to
    the emulator's REST server with anonymous credentials.
    """

    def __init__(
        self,
        *,
        credentials: Any = None,
        client_options: Any = None,
        emulator_host: str | None = None,
        emulator_rest_host: str | None = None,
        retry: Any = DEFAULT,
        timeout: Any = DEFAULT,
    ) -> None:
        if emulator_host or emulator_rest_host:
            from google.auth.credentials import AnonymousCredentials

            endpoint = rest_endpoint(emulator_host or "", emulator_rest_host)
            client = tasks_v2.CloudTasksClient(
                transport="rest",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": endpoint},
            )
            buffer = BufferClient(endpoint, anonymous=True)
        else:
            client = tasks_v2.CloudTasksClient(
                transport="rest", credentials=credentials, client_options=client_options
            )
            buffer = BufferClient(DEFAULT_REST_ENDPOINT, credentials=credentials)
        super().__init__(client, buffer=buffer, retry=retry, timeout=timeout)
