"""The emulator as other clients see it: the official clients unchanged, raw HTTP and gRPC, bad input,
and the command itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import grpc
import pytest
import requests
from google.api_core import exceptions as core
from google.auth.credentials import AnonymousCredentials
from google.cloud import tasks_v2
from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

from cloudtasks_kit.emulator import Emulator
from cloudtasks_kit.engine import messages

from .conftest import LocalServer, wait_until


def official_grpc(emulator: Emulator) -> tasks_v2.CloudTasksClient:
    channel = grpc.insecure_channel(emulator.grpc_address)
    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))


def official_rest(emulator: Emulator) -> tasks_v2.CloudTasksClient:
    return tasks_v2.CloudTasksClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator.rest_url},
    )


@pytest.mark.parametrize("make", [official_grpc, official_rest], ids=["grpc", "rest"])
def test_the_official_client_works_unchanged(emulator: Emulator, project: str, make: Any) -> None:
    client = make(emulator)
    parent = f"projects/{project}/locations/us-central1"
    queue = client.create_queue(parent=parent, queue={"name": f"{parent}/queues/official"})
    assert queue.state == tasks_v2.Queue.State.RUNNING
    assert queue.rate_limits.max_dispatches_per_second == 500
    task = client.create_task(
        parent=queue.name,
        task={
            "name": f"{queue.name}/tasks/t1",
            "http_request": {"url": "https://w.example.com/", "body": b"hi"},
        },
    )
    assert task.name.endswith("/tasks/t1")
    with pytest.raises((core.AlreadyExists, core.Conflict)):
        client.create_task(parent=queue.name, task=task)
    full = client.get_task(request={"name": task.name, "response_view": tasks_v2.Task.View.FULL})
    assert full.http_request.body == b"hi"
    assert [t.name for t in client.list_tasks(parent=queue.name)] == [task.name]
    operation = client.batch_create_tasks(
        parent=queue.name,
        requests=[
            {"parent": queue.name, "task": {"http_request": {"url": f"https://w.example.com/{i}"}}}
            for i in range(3)
        ],
    )
    result = operation.result(timeout=10)
    assert len(result.tasks) == 3
    assert operation.metadata.state == tasks_v2.BatchCreateTasksMetadata.State.SUCCEEDED
    assert client.get_operation({"name": operation.operation.name}).done
    paused = client.pause_queue(name=queue.name)
    assert paused.state == tasks_v2.Queue.State.PAUSED
    updated = client.update_queue(
        queue={"name": queue.name, "rate_limits": {"max_dispatches_per_second": 7}},
        update_mask={"paths": ["rate_limits.max_dispatches_per_second"]},
    )
    assert updated.rate_limits.max_dispatches_per_second == 7
    assert updated.state == tasks_v2.Queue.State.PAUSED
    client.set_iam_policy(
        request={"resource": queue.name, "policy": {"bindings": [{"role": "roles/viewer"}]}}
    )
    assert client.get_iam_policy(request={"resource": queue.name}).bindings[0].role == "roles/viewer"
    locations = client.list_locations({"name": f"projects/{project}"})
    assert "us-central1" in [loc.location_id for loc in locations.locations]
    client.delete_task(name=task.name)
    with pytest.raises(core.NotFound):
        client.get_task(name=task.name)
    client.purge_queue(name=queue.name)
    client.delete_queue(name=queue.name)
    assert list(client.list_queues(parent=parent)) == []


def test_async_official_client_works_unchanged(emulator: Emulator, project: str) -> None:
    import asyncio

    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcAsyncIOTransport

    async def main() -> str:
        channel = grpc.aio.insecure_channel(emulator.grpc_address)
        client = tasks_v2.CloudTasksAsyncClient(transport=CloudTasksGrpcAsyncIOTransport(channel=channel))
        parent = f"projects/{project}/locations/us-central1"
        queue = await client.create_queue(parent=parent, queue={"name": f"{parent}/queues/aio"})
        await channel.close()
        return str(queue.name)

    assert asyncio.run(main()).endswith("/queues/aio")


def test_rest_speaks_googles_json(emulator: Emulator, project: str) -> None:
    base = f"{emulator.rest_url}/v2/projects/{project}/locations/us-central1"
    created = requests.post(
        f"{base}/queues", json={"name": f"projects/{project}/locations/us-central1/queues/rq"}
    )
    assert created.status_code == 200
    assert created.json()["state"] == "RUNNING"  # names unless the caller asks for integers
    as_ints = requests.get(f"{base}/queues/rq", params={"$alt": "json;enum-encoding=int"})
    assert as_ints.json()["state"] == 1
    task = requests.post(
        f"{base}/queues/rq/tasks",
        json={
            "task": {"httpRequest": {"url": "https://w.example.com/", "httpMethod": "PUT", "body": "aGk="}}
        },
    )
    assert task.status_code == 200, task.text
    assert task.json()["httpRequest"]["httpMethod"] == "PUT"
    missing = requests.get(f"{base}/queues/nope")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {"code": 404, "message": messages.QUEUE_MISSING, "status": "NOT_FOUND"}
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/queues", b"{not json", 400),
        ("POST", "/queues", b"[1, 2]", 400),
        ("POST", "/queues", b'{"name": 5}', 400),
        ("POST", "/queues", b'{"nmae": "typo"}', 400),
        ("POST", "/queues/rq/tasks", b'{"task": {"httpRequest": {"url": "x"}}}', 400),
        ("GET", "/queues/rq/tasks?pageToken=garbage!", b"", 400),
        ("GET", "/nothing/here", b"", 404),
        ("PUT", "/queues/rq", b"", 501),
        ("POST", "/queues/rq/tasks", b"x" * (3 * 1024 * 1024), 400),
    ],
)
def test_bad_rest_input_gets_an_error_and_the_emulator_keeps_serving(
    emulator: Emulator, project: str, method: str, path: str, body: bytes, status: int
) -> None:
    base = f"{emulator.rest_url}/v2/projects/{project}/locations/us-central1"
    requests.post(f"{base}/queues", json={"name": f"projects/{project}/locations/us-central1/queues/rq"})
    response = requests.request(method, base + path, data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and error["message"] and error["status"]
    assert requests.get(f"{base}/queues/rq").status_code == 200


def test_unknown_top_level_path_is_a_json_404(emulator: Emulator) -> None:
    response = requests.get(f"{emulator.rest_url}/favicon.ico")
    assert response.status_code == 404
    assert response.json()["error"]["status"] == "NOT_FOUND"


def test_garbage_grpc_message_is_invalid_argument(emulator: Emulator) -> None:
    channel = grpc.insecure_channel(emulator.grpc_address)
    call = channel.unary_unary("/google.cloud.tasks.v2.CloudTasks/CreateTask")
    with pytest.raises(grpc.RpcError) as caught:
        call(b"\xff\xff\xff\xff garbage", timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    unknown = channel.unary_unary("/google.cloud.tasks.v2.CloudTasks/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as caught:
        unknown(b"", timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert official_grpc(emulator).list_locations({"name": "projects/p"}).locations
    channel.close()


def test_handlers_that_hang_or_reset_are_retried(
    emulator: Emulator, project: str, local_server: LocalServer
) -> None:
    import socket
    import threading

    resets = socket.socket()
    resets.bind(("127.0.0.1", 0))
    resets.listen()

    def reset_all() -> None:
        while True:
            try:
                conn, _ = resets.accept()
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()

    threading.Thread(target=reset_all, daemon=True).start()
    client = emulator.client(project)
    queue = client.queue("rough")
    from datetime import timedelta

    import cloudtasks_kit as kit

    queue.create(retry=kit.RetryConfig(max_attempts=2, min_backoff=timedelta(seconds=0.05)))
    port = resets.getsockname()[1]
    queue.create_task(f"http://127.0.0.1:{port}/reset")
    mine = lambda: [d for d in emulator.deliveries if d.task_name.startswith(f"projects/{project}/")]
    wait_until(lambda: len(mine()) == 2)
    assert all(d.status is None and d.error and "UNREACHABLE" in d.error for d in mine())
    resets.close()
    assert queue.get().id == "rough"  # still serving
    client.close()


def test_the_command_starts_serves_and_stops_on_sigterm(tmp_path: Any) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cloudtasks_kit.emulator", "--port", "0", "--rest-port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("cloudtasks-kit emulator ready: gRPC 127.0.0.1:"), line
        grpc_address = line.split("gRPC ", 1)[1].split(" ", 1)[0]
        rest_url = line.split("REST ", 1)[1].split(" ", 1)[0]
        import cloudtasks_kit as kit

        with kit.CloudTasks("p", "us-central1", emulator_host=grpc_address) as client:
            assert client.queue("cli").create().id == "cli"
        assert "cli" in json.dumps(
            requests.get(f"{rest_url}/v2/projects/p/locations/us-central1/queues").json()
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert "stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_command_reports_a_taken_port() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "cloudtasks_kit.emulator", "--port", "0", "--rest-port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert "cloudtasks-kit emulator:" in result.stderr


@pytest.mark.slow  # CI runs the demo itself as the main job too
def test_the_demo_runs_and_exits_zero() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "cloudtasks_kit.cli", "demo"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo finished: all tasks delivered" in result.stdout
    assert "OIDC token verified" in result.stdout
    assert time.monotonic() - started < 60


def test_huge_grpc_messages_get_the_services_errors_and_the_emulator_keeps_serving(
    emulator: Emulator, project: str
) -> None:
    client = official_grpc(emulator)
    parent = f"projects/{project}/locations/us-central1"
    queue = client.create_queue(parent=parent, queue={"name": f"{parent}/queues/huge"})
    task = {"http_request": {"url": "https://w.example.com/", "body": b"x" * (2 * 1024 * 1024)}}
    with pytest.raises(core.InvalidArgument, match="task size"):
        client.create_task(parent=queue.name, task=task)
    task["http_request"]["body"] = b"x" * (5 * 1024 * 1024)  # type: ignore[index]
    with pytest.raises(core.ResourceExhausted):
        client.create_task(parent=queue.name, task=task)
    assert client.get_queue(name=queue.name).name == queue.name
