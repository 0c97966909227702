"""Clients are made offline and resolved on first use (issue 14).

An app module that makes ``CloudTasks(...)`` at import time must import on a machine with no Google
credentials and no project; the first call then fails with the kit's own, clear error. With the emulator's
variables set, no project is needed at all.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import cloudtasks_kit as kit
from cloudtasks_kit import _emulator_env
from cloudtasks_kit.testing import FakeTransport

APP_MODULE = """
from cloudtasks_kit import {client}, OidcToken, TaskApp

tasks = {client}({args})            # at import time, as apps do
app = TaskApp(tasks, base_url="https://worker.example.com", queue="emails",
              oidc=OidcToken(service_account_email="tasks@my-project.iam.gserviceaccount.com"))


@app.task
def send_welcome(to: str) -> None:
    pass
"""

ENV = (
    "GOOGLE_CLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT",
    "CLOUDTASKS_LOCATION",
    "GOOGLE_APPLICATION_CREDENTIALS",
    _emulator_env.EMULATOR_HOST_ENV,
    _emulator_env.EMULATOR_REST_HOST_ENV,
)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """No project, no emulator, and google-auth finding no credentials (a laptop before any set-up)."""
    import google.auth
    from google.auth import exceptions

    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    lookups: list[int] = []

    def no_credentials(*args: Any, **kwargs: Any) -> Any:
        lookups.append(1)
        raise exceptions.DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    return lookups


@pytest.fixture
def app_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Writes and imports an app module; yields a function taking the client class and its arguments."""
    monkeypatch.syspath_prepend(str(tmp_path))
    made: list[str] = []

    def make(client: str, args: str) -> Any:
        name = f"lazy_app_{len(made)}"
        (tmp_path / f"{name}.py").write_text(APP_MODULE.format(client=client, args=args))
        made.append(name)
        return importlib.import_module(name)

    yield make
    for name in made:
        sys.modules.pop(name, None)


def test_a_module_binding_a_client_imports_without_credentials(offline: list[int], app_module: Any) -> None:
    module = app_module("CloudTasks", 'project="my-project", location="us-central1"')
    assert offline == []  # nothing looked up at import
    assert module.tasks.project == "my-project"
    assert module.tasks.parent == "projects/my-project/locations/us-central1"
    assert repr(module.tasks) == (
        "CloudTasks(project='my-project', location='us-central1', transport=GrpcTransport)"
    )
    assert offline == []

    with pytest.raises(kit.Unauthenticated) as caught:
        module.send_welcome.enqueue("ada@example.com")
    message = str(caught.value)
    assert "gcloud auth application-default login" in message
    assert "GOOGLE_APPLICATION_CREDENTIALS" in message
    assert "CLOUDTASKS_EMULATOR_HOST" in message
    assert offline  # looked up on the first call, and only then


def test_an_async_client_at_import_time_fails_on_first_call(offline: list[int], app_module: Any) -> None:
    import asyncio

    module = app_module("AsyncCloudTasks", 'project="my-project", location="us-central1"')
    assert offline == []
    with pytest.raises(kit.Unauthenticated, match="gcloud auth application-default login"):
        asyncio.run(module.send_welcome.aenqueue("ada@example.com"))


def test_no_project_is_a_clear_error_on_first_use(offline: list[int], app_module: Any) -> None:
    module = app_module("CloudTasks", "")
    queue = module.tasks.queue("emails")  # a handle is no call: still nothing needed
    assert "project unresolved" in repr(queue)
    assert "project='<unset>'" in repr(module.tasks)
    with pytest.raises(
        kit.UsageError, match=r"needs a project: pass project=\.\.\. or set GOOGLE_CLOUD_PROJECT"
    ):
        module.send_welcome.enqueue("ada@example.com")
    with pytest.raises(kit.UsageError, match="needs a project"):
        _ = module.tasks.parent
    assert offline == []  # the project is missing: credentials were never looked up


def test_a_test_binds_the_fake_after_import(offline: list[int], app_module: Any) -> None:
    module = app_module("CloudTasks", 'project="my-project", location="us-central1"')
    fake = FakeTransport()
    client = fake.client()
    client.queue("emails").create()
    module.app.bind(client)
    module.send_welcome.enqueue("ada@example.com")
    assert len(fake.tasks("emails")) == 1
    assert module.tasks._made_transport() is None  # the import-time client never made its transport
    module.tasks.close()  # and closing it makes none
    assert offline == []


def test_values_given_are_still_checked_when_the_client_is_made() -> None:
    with pytest.raises(kit.ValidationError, match="project"):
        kit.CloudTasks(project="bad project", location="us-central1")
    with pytest.raises(kit.ValidationError, match="location"):
        kit.AsyncCloudTasks(project="p", location="bad location")
    with pytest.raises(kit.UsageError, match="must be 'grpc', 'rest'"):
        kit.CloudTasks(transport="carrier-pigeon")
    with pytest.raises(kit.ValidationError, match="queue id"):
        kit.CloudTasks().queue("bad queue")


def test_the_transport_is_made_once_whatever_the_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []
    fake = FakeTransport()
    fake.client().queue("q").create()

    def make(*args: Any) -> FakeTransport:
        made.append(1)
        return fake

    monkeypatch.setattr(kit.client, "_sync_transport", make)
    client = kit.CloudTasks("p", "us-central1")
    threads = [threading.Thread(target=lambda: client.transport) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [1]


def test_the_defaults_are_the_emulators_own() -> None:
    from cloudtasks_kit.emulator.declared import DEFAULT_LOCATION, DEFAULT_PROJECT

    assert (_emulator_env.EMULATOR_PROJECT, _emulator_env.EMULATOR_LOCATION) == (
        DEFAULT_PROJECT,
        DEFAULT_LOCATION,
    )


# With the emulator's variables: no project, no credentials.


@pytest.fixture
def emulator(emulator: Any, offline: list[int], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The session's emulator (tests/conftest.py), named by the environment variables alone."""
    with emulator.client() as admin:  # local-project, us-central1
        admin.queue("emails").ensure()
    for name, value in emulator.environment().items():
        monkeypatch.setenv(name, value)
    return emulator


def test_with_the_emulator_variables_no_project_is_needed(
    emulator: Any, offline: list[int], app_module: Any
) -> None:
    module = app_module("CloudTasks", "")
    assert module.tasks.project == "local-project"
    assert module.tasks.location == "us-central1"
    task = module.send_welcome.enqueue("ada@example.com")
    assert task.name.startswith("projects/local-project/locations/us-central1/queues/emails/tasks/")
    assert offline == []  # the emulator needs no credentials
    module.tasks.close()


def test_the_environment_project_wins_over_the_emulators_default(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    assert kit.CloudTasks().parent == "projects/my-project/locations/us-central1"


def test_rest_with_only_the_rest_variable(
    emulator: Any, offline: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(_emulator_env.EMULATOR_HOST_ENV)
    with kit.CloudTasks(transport="rest") as tasks:
        assert "emails" in [q.id for q in tasks.list_queues()]
    assert offline == []
    # gRPC needs the gRPC address: without it the client would go to Google, so the project is required.
    with pytest.raises(kit.UsageError, match="needs a project"):
        _ = kit.CloudTasks().project


async def test_async_with_the_emulator_variables(emulator: Any, offline: list[int]) -> None:
    tasks = kit.AsyncCloudTasks()
    assert repr(tasks) == (
        "AsyncCloudTasks(project='local-project', location='us-central1', transport=AsyncGrpcTransport)"
    )
    queue = await tasks.queue("emails").get()
    assert queue.name == "projects/local-project/locations/us-central1/queues/emails"
    await tasks.close()
    assert offline == []
