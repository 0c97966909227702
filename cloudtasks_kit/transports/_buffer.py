"""BufferTask over REST, for every production transport: the official client has no method for it."""

from __future__ import annotations

import threading
from typing import Any

from google.cloud import tasks_v2
from google.protobuf import json_format

from .. import rules
from .calls import BufferTaskRequest

DEFAULT_REST_ENDPOINT = "https://cloudtasks.googleapis.com"
_TIMEOUT = 20.0


def buffer_path(queue: str, task_id: str | None) -> str:
    """``/v2/{queue}/tasks:buffer`` or ``/v2/{queue}/tasks/{task_id}:buffer``."""
    return f"/v2/{queue}/tasks/{task_id}:buffer" if task_id else f"/v2/{queue}/tasks:buffer"


class BufferClient:
    """Posts BufferTask requests with ``requests``.

    Against Google it authenticates with the given credentials, or application default credentials
    (scope cloud-platform) looked up on first use; against the emulator (``anonymous=True``) it sends none.
    """

    def __init__(self, endpoint: str, *, credentials: Any = None, anonymous: bool = False) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._credentials = credentials
        self._anonymous = anonymous
        self._session: Any = None
        self._lock = threading.Lock()

    def _get_session(self) -> Any:
        with self._lock:
            if self._session is None:
                if self._anonymous:
                    import requests

                    self._session = requests.Session()
                else:
                    import google.auth
                    from google.auth.transport.requests import AuthorizedSession

                    credentials = self._credentials
                    if credentials is None:
                        credentials, _ = google.auth.default(scopes=[rules.CLOUD_PLATFORM_SCOPE])
                    self._session = AuthorizedSession(credentials)
            return self._session

    def buffer(self, request: BufferTaskRequest) -> Any:
        """Post one BufferTask request; returns the raw ``Task`` protobuf of the answer."""
        from google.api_core import exceptions as core

        session = self._get_session()
        headers = {"x-goog-request-params": f"queue={request.queue}", **request.headers}
        response = session.request(
            request.method,
            self.endpoint + buffer_path(request.queue, request.task_id),
            data=request.body,
            headers=headers,
            timeout=_TIMEOUT,
        )
        if response.status_code >= 400:
            raise core.from_http_response(response)
        payload = response.json()
        return json_format.ParseDict(
            payload.get("task", {}), tasks_v2.Task.pb()(), ignore_unknown_fields=True
        )

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
