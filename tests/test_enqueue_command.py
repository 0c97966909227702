"""``cloudtasks-kit enqueue``: a JSONL file in, tasks out, failed lines written back out, re-runs resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cloudtasks_kit.cli import main
from cloudtasks_kit.emulator import Emulator


def run(emulator: Emulator, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudtasks_kit.cli",
            "enqueue",
            "--project",
            project,
            "--location",
            "us-central1",
            "--emulator-host",
            emulator.grpc_address,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def enqueue(
    emulator: Emulator, project: str, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """The command in this process (faster than a subprocess): status, stdout, stderr."""
    status = main(
        [
            "enqueue",
            "--project",
            project,
            "--location",
            "us-central1",
            "--emulator-host",
            emulator.grpc_address,
            *list(args),
        ]
    )
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def spec(i: int) -> str:
    return json.dumps({"url": f"https://w.example.com/{i}", "json": {"i": i}, "dedup_key": f"k{i}"})


def test_every_line_becomes_a_task(emulator: Emulator, project: str, tmp_path: Path) -> None:
    emulator.client(project).queue("jobs").create()
    source = tmp_path / "tasks.jsonl"
    source.write_text("\n".join(spec(i) for i in range(250)))
    result = run(emulator, project, "--queue", "jobs", "--file", str(source))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 of 250 lines done" in result.stdout and "250 created, 0 already there" in result.stdout
    assert "250/250" in result.stderr
    assert len(list(emulator.client(project).queue("jobs").list_tasks())) == 250
    assert not (tmp_path / "tasks.failed.jsonl").exists()


def test_running_a_file_again_resumes_it(
    emulator: Emulator, project: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.client(project).queue("jobs").create()
    first, whole = tmp_path / "first.jsonl", tmp_path / "tasks.jsonl"
    first.write_text("\n".join(spec(i) for i in range(120)))  # an interrupted first run
    whole.write_text("\n".join(spec(i) for i in range(300)))
    assert enqueue(emulator, project, capsys, "--queue", "jobs", "--file", str(first))[0] == 0

    status, out, _ = enqueue(emulator, project, capsys, "--queue", "jobs", "--file", str(whole))
    assert status == 0, out
    assert "300 of 300 lines done" in out and "180 created, 120 already there" in out
    assert "failed" not in out and not (tmp_path / "tasks.failed.jsonl").exists()
    assert len(list(emulator.client(project).queue("jobs").list_tasks())) == 300

    status, out, _ = enqueue(emulator, project, capsys, "--queue", "jobs", "--file", str(whole))
    assert (status, "0 created, 300 already there" in out) == (0, True)


def test_failed_lines_are_written_out_with_the_files_line_numbers(
    emulator: Emulator, project: str, tmp_path: Path
) -> None:
    emulator.client(project).queue("jobs").create()
    lines = [
        json.dumps({"url": "https://w.example.com/ok", "task_id": "good"}),
        "",
        "{not json",
        json.dumps({"url": "ftp://bad"}),
        "   ",
        json.dumps({"url": "https://w.example.com/ok", "task_id": "good"}),
        json.dumps({"url": "https://w.example.com/ok", "delay": 30}),
    ]
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines) + "\n")
    result = run(emulator, project, "--queue", "jobs", "--file", str(source))
    assert result.returncode == 1
    assert "2 of 5 lines done" in result.stdout and "2 created, 0 already there, 3 failed" in result.stdout
    assert "line 3:" in result.stdout and "is not JSON" in result.stdout  # blank line 2 counts
    assert "line 4:" in result.stdout and "ftp://bad" in result.stdout
    assert "line 6: the same task id as line 1" in result.stdout
    failed = (tmp_path / "mixed.failed.jsonl").read_text().splitlines()
    assert failed == [lines[2], lines[3], lines[5]]
    assert "Traceback" not in result.stderr


SECRET = "s3cr3t-bearer-value"


def test_hostile_lines_fail_alone_with_a_one_line_reason(
    emulator: Emulator, project: str, tmp_path: Path
) -> None:
    """Deep nesting (which Python's JSON parser cannot take), huge numbers, lone surrogates, secrets in
    bad lines: each such line fails with its number and one line of reason; the rest is created."""
    emulator.client(project).queue("jobs").create()
    good = json.dumps({"url": "https://w.example.com/ok", "task_id": "good"})
    lines = [
        good,
        "[" * 200_000 + "]" * 200_000,  # a RecursionError in json.loads
        json.dumps({"url": "https://w.example.com/", "json": [[[[[[[[[[0]]]]]]]]]] * 3}),  # fine
        '{"url": "https://w.example.com/", "json": ' + "[" * 70 + "]" * 70 + "}",
        '{"url": "https://w.example.com/", "json": ' + "9" * 5000 + "}",
        '{"url": "https://w.example.com/", "text": "\\ud800", "task_id": "t1"}',
        '{"url": "https://w.example.com/", "dedup_key": "\\ud800"}',
        json.dumps({"url": "https://w.example.com/", "headers": {"Authorization": f"Bearer {SECRET}\n"}}),
        '{"url": "https://w.example.com/", "headers": {"Authorization": "Bearer ' + SECRET + '"',
        json.dumps({"url": f"ftp://w.example.com/?api_key={SECRET}"}),
        '{"url": "https://w.example.com/\\u00e9 ]]]]" ' + "}" * 100,
        json.dumps({"url": "https://w.example.com/ok2", "task_id": "good2"}),
    ]
    source = tmp_path / "hostile.jsonl"
    source.write_text("\n".join(lines) + "\n")
    result = run(emulator, project, "--queue", "jobs", "--file", str(source))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and SECRET not in result.stdout + result.stderr
    reasons = {
        int(line.split(":")[0].split()[1]): line
        for line in result.stdout.splitlines()
        if line.startswith("  line ")
    }
    assert sorted(reasons) == [2, 4, 5, 6, 7, 8, 9, 10, 11]
    assert "nested 200000 levels deep" in reasons[2] and "nested 71 levels deep" in reasons[4]
    assert "is not JSON" in reasons[5] and "lone surrogate" in reasons[6] and "lone surrogate" in reasons[7]
    assert "'***' must not contain line breaks" in reasons[8]
    assert "is not JSON" in reasons[9] and "api_key=***" in reasons[10] and "is not JSON" in reasons[11]
    assert "3 created" in result.stdout
    assert {t.id for t in emulator.client(project).queue("jobs").list_tasks()} >= {"good", "good2"}


def test_a_missing_queue_is_reported_once(emulator: Emulator, project: str, tmp_path: Path) -> None:
    source = tmp_path / "t.jsonl"
    source.write_text("\n".join(spec(i) for i in range(150)))
    result = run(emulator, project, "--queue", "nope", "--file", str(source))
    assert result.returncode == 1
    assert result.stderr.count("does not exist") == 1 and "Traceback" not in result.stderr
    assert f"projects/{project}/locations/us-central1/queues/nope" in result.stderr
    assert "gcloud tasks queues create nope" in result.stderr
    assert result.stdout == "" and not (tmp_path / "t.failed.jsonl").exists()


def test_a_missing_file_is_a_usage_error(
    emulator: Emulator, project: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = enqueue(
        emulator, project, capsys, "--queue", "q", "--file", str(tmp_path / "absent.jsonl")
    )
    assert status == 2 and "No such file" in err and len(err.strip().splitlines()) == 1


def argv_for(tmp_path: Path, *extra: str) -> list[str]:
    source = tmp_path / "t.jsonl"
    source.write_text(spec(1))
    return [
        "enqueue",
        "--project",
        "p",
        "--location",
        "us-central1",
        "--queue",
        "q",
        "--file",
        str(source),
        *extra,
    ]


@pytest.mark.parametrize("value", ["0", "-3", "101", "many"])
def test_a_bad_concurrency_is_refused_by_the_parser(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv_for(tmp_path, "--concurrency", value))
    assert exited.value.code == 2
    assert "argument --concurrency" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value"), [("--queue", "bad queue"), ("--location", "us central"), ("--project", "my project")]
)
def test_a_bad_id_is_a_usage_error_named_as_its_flag(
    flag: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv_for(tmp_path, flag, value)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cloudtasks-kit enqueue: {flag} {value!r} ") and len(err.strip().splitlines()) == 1


def test_a_missing_project_or_location_names_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "CLOUDTASKS_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    source = tmp_path / "t.jsonl"
    source.write_text(spec(1))
    assert main(["enqueue", "--location", "us-central1", "--queue", "q", "--file", str(source)]) == 2
    err = capsys.readouterr().err
    assert "--project" in err and "project=" not in err
    assert main(["enqueue", "--project", "p", "--queue", "q", "--file", str(source)]) == 2
    assert "--location" in capsys.readouterr().err


def test_no_google_credentials_is_one_line_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def no_credentials(*args: object, **kwargs: object) -> None:
        raise DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    monkeypatch.delenv("CLOUDTASKS_EMULATOR_HOST", raising=False)
    source = tmp_path / "t.jsonl"
    source.write_text("\n" + spec(1))
    status = main(
        ["enqueue", "--project", "p", "--location", "us-central1", "--queue", "q", "--file", str(source)]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert err.strip().count("\n") == 0 and "no Google credentials" in err and "--emulator-host" in err


def test_no_google_credentials_in_a_real_process(tmp_path: Path) -> None:
    source = tmp_path / "t.jsonl"
    source.write_text(spec(1))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_", "CLOUDTASKS_"))}
    # No credentials file, no gcloud configuration, and no probe of the GCE metadata server (no network).
    env.update(HOME=str(tmp_path), CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), NO_GCE_CHECK="true")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudtasks_kit.cli",
            "enqueue",
            "--project",
            "p",
            "--location",
            "us-central1",
            "--queue",
            "q",
            "--file",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "cloudtasks-kit enqueue: no Google credentials found: run 'gcloud auth application-default login', "
        "or set GOOGLE_APPLICATION_CREDENTIALS, or pass --emulator-host for the local emulator"
    ]


def test_credentials_missing_only_at_the_first_call_are_one_line_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients that look credentials up lazily fail at the first call, not when built: same message."""
    from google.auth.exceptions import DefaultCredentialsError

    from cloudtasks_kit import bulk_cli
    from cloudtasks_kit.transports.fake import FakeTransport

    fake = FakeTransport()

    def no_credentials(rpc: object, request: object) -> None:
        raise DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(fake, "call", no_credentials)
    monkeypatch.setattr(bulk_cli, "_client", lambda args: fake.client(args.project, args.location))
    assert main(argv_for(tmp_path)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no Google credentials found" in err
