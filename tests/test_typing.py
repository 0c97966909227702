"""The decorator keeps the function's signature for type checkers (ParamSpec)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

HERE = Path(__file__).parent / "typing"


def run_mypy(path: Path, tmp_path: Path) -> tuple[str, int]:
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--follow-imports=silent",
            str(path),
        ]
    )
    return stdout + stderr, status


@pytest.mark.slow
def test_correct_usage_type_checks(tmp_path: Path) -> None:
    output, status = run_mypy(HERE / "task_usage.py", tmp_path)
    assert status == 0, output


@pytest.mark.slow
def test_each_wrong_argument_is_reported(tmp_path: Path) -> None:
    path = HERE / "task_misuse.py"
    output, status = run_mypy(path, tmp_path)
    assert status == 1
    expected = {n for n, line in enumerate(path.read_text().splitlines(), 1) if "  # error" in line}
    reported = {int(m.group(1)) for m in re.finditer(rf"{re.escape(path.name)}:(\d+): error", output)}
    assert reported == expected, output
