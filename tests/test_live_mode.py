"""The contract suite's live mode, tested without Google: an emulator stands in for the service, reached
through the real gRPC and REST path (``--cloudtasks-live-endpoint``), as a maintainer's run reaches
Cloud Tasks. The run records what each backend observed, and the live observations are compared with
the engine's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cloudtasks_kit.emulator import Emulator

from .live_record import compare, main

ROOT = Path(__file__).parent.parent
SELECTED = (
    "error_answers or stored_headers or dispatch_headers_match or lexicographical or iam or run_task_returns"
)


@pytest.mark.slow
def test_live_mode_runs_records_cleans_up_and_compares(tmp_path: Path) -> None:
    record = tmp_path / "run.json"
    with Emulator() as service:
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n0",  # one process: the record is written by the session that ran the cases
            "tests/test_contract_fidelity.py",
            "-k",
            SELECTED,
            "--cloudtasks-live=projects/live-project/locations/us-central1",
            f"--cloudtasks-live-endpoint={service.grpc_address}",
            f"--cloudtasks-live-rest-endpoint={service.rest_address}",
            "--cloudtasks-live-scale=0.005",
            f"--cloudtasks-record={record}",
        ]
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        # Only the malformed-parent case over REST skips (emulator-rest and live-rest alike).
        assert "2 skipped" in run.stdout.splitlines()[-1], run.stdout[-1000:]
        left = service.run(lambda engine: [n for n in engine.queue_names() if "/live-project/" in n])
        assert left == []  # every queue the live backend made was deleted
    observed = json.loads(record.read_text())
    kinds = set().union(*(set(kinds) for kinds in observed["cases"].values()))
    assert {"fake", "emulator-grpc", "emulator-rest", "live", "live-grpc", "live-rest"} <= kinds
    headers = observed["cases"]["test_contract_fidelity::test_dispatch_headers_match_the_recording"]
    assert len(headers["live"]["attempts"]) == 6
    assert headers["live"]["attempts"] == headers["fake"]["attempts"]
    # The emulator behind the live path answers as the fake does; REST against REST (the official REST
    # client refuses a malformed parent before sending, which gRPC sends).
    assert compare(observed, "live-grpc", "fake") == []
    assert compare(observed, "live-rest", "emulator-rest") == []
    assert compare(observed, "live", "fake") != []  # live-rest, having skipped that case, differs
    assert main([str(record), "--observed", "live-grpc"]) == 0


@pytest.mark.slow
def test_without_the_option_the_live_backends_skip() -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-n0",
        "tests/test_contract_fidelity.py",
        "-k",
        "lexicographical",
        "-rs",
    ]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert "3 passed, 2 skipped" in run.stdout
    assert "--cloudtasks-live=projects/P/locations/L" in run.stdout
