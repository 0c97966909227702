"""firebase-admin's task queues against the emulator: ``CLOUD_TASKS_EMULATOR_HOST`` names its REST port,
``functions.task_queue(...).enqueue()`` creates real tasks there and they are delivered (through a route)
to a local worker. firebase-admin itself is the client; no Google credentials or network are used."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import cloudtasks_kit as kit
from cloudtasks_kit._client_base import emulator_addresses
from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.emulator.firebase import ROUTES, function_url

from .test_emulator_routes import Worker

firebase_admin = pytest.importorskip("firebase_admin")
from firebase_admin import credentials, exceptions, functions  # noqa: E402

PROJECT = "fb-project"
FUNCTIONS = f"https://us-central1-{PROJECT}.cloudfunctions.net"
EMULATED_ACCOUNT = "emulated-service-acct@email.com"  # what firebase-admin puts in the task's oidcToken


class _NoCredential(credentials.Base):  # type: ignore[misc]
    """firebase-admin never asks for a credential when it talks to an emulator; fail loudly if it does."""

    def get_credential(self) -> Any:
        raise AssertionError("firebase-admin asked for a real credential")


@pytest.fixture
def worker() -> Iterator[Worker]:
    running = Worker()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def emulator(worker: Worker) -> Iterator[Emulator]:
    # The Functions emulator's URL shape: http://127.0.0.1:5001/PROJECT/REGION/FUNCTION.
    with Emulator(routes={FUNCTIONS: f"{worker.url}/{PROJECT}/us-central1"}, history=None) as running:
        yield running


@pytest.fixture
def app(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in emulator.firebase_environment().items():
        monkeypatch.setenv(name, value)  # read when the app's functions service is first made
    made = firebase_admin.initialize_app(_NoCredential(), {"projectId": PROJECT}, name=uuid.uuid4().hex)
    try:
        yield made
    finally:
        firebase_admin.delete_app(made)


def test_firebase_enqueue_creates_a_task_that_is_delivered(
    emulator: Emulator, app: Any, worker: Worker
) -> None:
    queue = emulator.client(PROJECT).queue("resize")
    queue.create()
    queue.pause()  # held, to look at it before it is delivered
    task_id = functions.task_queue("resize", app=app).enqueue({"image": "a.png"})
    task = queue.get_task(task_id, view="FULL")
    assert task.url == f"{FUNCTIONS}/resize"  # firebase-admin sends none: the function's production URL
    assert task.json() == {"image": "a.png"}
    queue.resume()
    [attempt] = emulator.wait_for_attempts(1)
    assert (attempt.status, attempt.url) == (200, f"{FUNCTIONS}/resize")
    assert attempt.routed_url == f"{worker.url}/{PROJECT}/us-central1/resize"
    path, headers, body = worker.requests[0]
    assert path == f"/{PROJECT}/us-central1/resize"
    assert json.loads(body) == {"image": "a.png"}
    assert headers["Content-Type"] == "application/json"
    assert headers["X-CloudTasks-QueueName"] == "resize" and headers["X-CloudTasks-TaskName"] == task_id
    # Its OIDC token is for the function URL (the audience the task-queue function checks).
    verifier = kit.TokenVerifier(
        audience=f"{FUNCTIONS}/resize", service_accounts=[EMULATED_ACCOUNT], certs_url=emulator.certs_url
    )
    assert verifier.verify(headers["Authorization"]).email == EMULATED_ACCOUNT


def test_firebase_task_options_ids_dedup_and_delete(emulator: Emulator, app: Any) -> None:
    queue = emulator.client(PROJECT).queue("later")
    queue.create()
    tasks = functions.task_queue("locations/us-central1/functions/later", app=app)
    options = functions.TaskOptions(
        task_id="job-1", schedule_delay_seconds=3600, dispatch_deadline_seconds=60
    )
    assert tasks.enqueue({"n": 1}, options) == "job-1"
    stored = queue.get_task("job-1")
    assert stored.schedule_time is not None and stored.raw.dispatch_deadline.total_seconds() == 60
    with pytest.raises(exceptions.AlreadyExistsError):
        tasks.enqueue({"n": 2}, options)
    tasks.delete("job-1")
    with pytest.raises(kit.NotFound):
        queue.get_task("job-1")
    with pytest.raises(exceptions.NotFoundError):
        tasks.delete("job-1")


def test_firebase_uri_option_is_delivered_as_given(emulator: Emulator, app: Any, worker: Worker) -> None:
    emulator.client(PROJECT).queue("direct").create()
    options = functions.TaskOptions(uri=f"{worker.url}/direct/here")
    functions.task_queue("direct", app=app).enqueue({"n": 1}, options)
    [attempt] = emulator.wait_for_attempts(1)
    assert (attempt.url, attempt.routed_url, attempt.status) == (f"{worker.url}/direct/here", None, 200)


def test_firebase_enqueue_into_a_missing_queue_is_not_found(app: Any) -> None:
    with pytest.raises(exceptions.NotFoundError):
        functions.task_queue("never-declared", app=app).enqueue({})


def test_the_dialect_over_raw_http(emulator: Emulator) -> None:
    queue = emulator.client(PROJECT).queue("raw")
    queue.create()
    queue.pause()
    base = f"{emulator.rest_url}/{queue.name}/tasks"
    answer = requests.post(base, json={"task": {"httpRequest": {"url": "", "body": "e30="}, "name": None}})
    assert answer.status_code == 200
    name = answer.json()["task"]["name"]
    assert name.startswith(f"/{queue.name}/tasks/")  # the leading slash firebase-admin strips
    assert answer.json()["task"]["httpRequest"]["url"] == function_url(queue.name)
    assert requests.delete(f"{emulator.rest_url}{name}").json() == {}
    wrong_verb = requests.get(base)
    assert (
        wrong_verb.status_code == 501 and "the full API is under /v2" in wrong_verb.json()["error"]["message"]
    )
    unknown = requests.get(f"{emulator.rest_url}/{queue.name}")
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    bad = requests.post(base, data=b"{not json")
    assert bad.status_code == 400 and "Invalid JSON payload" in bad.json()["error"]["message"]


def test_a_queue_level_override_fills_an_empty_url(emulator: Emulator, worker: Worker) -> None:
    queue = emulator.client(PROJECT).queue("overridden")
    queue.create(http_target=kit.QueueHttpTarget.model_validate({"uri_override": {"host": "127.0.0.1"}}))
    answer = requests.post(f"{emulator.rest_url}/{queue.name}/tasks", json={"task": {"httpRequest": {}}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["task"]["httpRequest"].get("url", "") == ""  # the queue's to fill at delivery


def test_the_dialect_routes_are_the_tables_create_and_delete_without_v2() -> None:
    assert [(r.rule.verb, r.rule.path) for r in ROUTES] == [
        ("POST", "/{parent=projects/*/locations/*/queues/*}/tasks"),
        ("DELETE", "/{name=projects/*/locations/*/queues/*/tasks/*}"),
    ]


def test_the_kit_ignores_the_firebase_variable(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # CLOUD_TASKS_EMULATOR_HOST is firebase-admin's (a REST dialect): the kit never takes it for the
    # gRPC address it reads from its own CLOUDTASKS_EMULATOR_HOST.
    monkeypatch.delenv("CLOUDTASKS_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("CLOUDTASKS_EMULATOR_REST_HOST", raising=False)
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", emulator.rest_address)
    assert emulator_addresses(None) == (None, None)
    monkeypatch.setenv("CLOUDTASKS_EMULATOR_HOST", emulator.grpc_address)
    assert emulator_addresses(None) == (emulator.grpc_address, None)
    with kit.CloudTasks(PROJECT, "us-central1") as client:
        assert client.queue("via-own-variable").create().id == "via-own-variable"
    # Only the emulator's side names the variable (to tell firebase-admin users where to point it).
    package = Path(kit.__file__).parent
    readers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "CLOUD_TASKS_EMULATOR_HOST" in path.read_text()
    )
    assert all(name.startswith("emulator") for name in readers), readers
