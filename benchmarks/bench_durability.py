"""Durability: 10,000 creates acknowledged through the official gRPC client, then ``kill -9`` of the
emulator (``--data-dir``), a restart on the same directory, and every acknowledged task checked present
exactly once and delivered to a local HTTP server. The 300-create version runs in the test suite
(tests/test_emulator_command.py); this one takes about half a minute."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))

from tests.test_emulator_command import Worker, kill_and_restart


def run(quick: bool = False) -> list[dict[str, Any]]:
    count = 2_000 if quick else 20_000  # killed once half are acknowledged
    worker = Worker()
    try:
        with tempfile.TemporaryDirectory() as data:
            figures = kill_and_restart(Path(data), worker, count=count, threads=4)
            ok = True
    except AssertionError as exc:
        figures, ok = {"failed": str(exc)}, False
    finally:
        worker.close()
    return [
        {
            "benchmark": f"durability: kill -9 after {count // 2:,} acknowledged creates, restart, deliver",
            "kit": ", ".join(f"{key}: {value}" for key, value in figures.items()),
            "official": "-",
            "ratio": None,
            "target": "none lost, no duplicates, all delivered",
            "ok": ok,
        }
    ]
