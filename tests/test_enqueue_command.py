"""``cloudtasks-kit enqueue``: a JSONL file in, tasks out, failed lines written back out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_every_line_becomes_a_task(emulator: Emulator, project: str, tmp_path: Path) -> None:
    emulator.client(project).queue("jobs").create()
    source = tmp_path / "tasks.jsonl"
    source.write_text(
        "\n".join(
            json.dumps({"url": f"https://w.example.com/{i}", "json": {"i": i}, "dedup_key": f"k{i}"})
            for i in range(250)
        )
    )
    result = run(emulator, project, "--queue", "jobs", "--file", str(source))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 of 250 tasks created" in result.stdout
    assert "250/250" in result.stderr
    assert len(list(emulator.client(project).queue("jobs").list_tasks())) == 250
    assert not (tmp_path / "tasks.failed.jsonl").exists()


def test_failed_lines_are_written_out_and_the_exit_status_says_so(
    emulator: Emulator, project: str, tmp_path: Path
) -> None:
    emulator.client(project).queue("jobs").create()
    lines = [
        json.dumps({"url": "https://w.example.com/ok", "task_id": "good"}),
        "{not json",
        json.dumps({"url": "ftp://bad"}),
        json.dumps({"url": "https://w.example.com/ok", "task_id": "good"}),
        json.dumps({"url": "https://w.example.com/ok", "delay": 30}),
    ]
    source = tmp_path / "mixed.jsonl"
    source.write_text("\n".join(lines) + "\n")
    result = run(emulator, project, "--queue", "jobs", "--file", str(source))
    assert result.returncode == 1
    assert "2 of 5 tasks created" in result.stdout
    assert "line 2:" in result.stdout and "is not JSON" in result.stdout
    assert "line 3:" in result.stdout and "ftp://bad" in result.stdout
    assert "line 4:" in result.stdout and "ALREADY_EXISTS" in result.stdout
    failed = (tmp_path / "mixed.failed.jsonl").read_text().splitlines()
    assert failed == [lines[1], lines[2], lines[3]]


def test_a_missing_queue_fails_every_line_and_a_missing_file_is_a_usage_error(
    emulator: Emulator, project: str, tmp_path: Path
) -> None:
    source = tmp_path / "t.jsonl"
    source.write_text(json.dumps({"url": "https://w.example.com/"}) + "\n")
    result = run(emulator, project, "--queue", "nope", "--file", str(source))
    assert result.returncode == 1 and "NOT_FOUND" in result.stdout
    missing = run(emulator, project, "--queue", "nope", "--file", str(tmp_path / "absent.jsonl"))
    assert missing.returncode == 2 and "No such file" in missing.stderr
