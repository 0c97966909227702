"""Types that mypy --strict checks: the decorator keeps the function's signature (ParamSpec), and the
transport seam types each call's response by its row of the call table."""

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
@pytest.mark.parametrize("name", ["task_usage.py", "seam_usage.py"])
def test_correct_usage_type_checks(tmp_path: Path, name: str) -> None:
    output, status = run_mypy(HERE / name, tmp_path)
    assert status == 0, output


@pytest.mark.slow
@pytest.mark.parametrize("name", ["task_misuse.py", "seam_misuse.py"])
def test_each_wrong_argument_is_reported(tmp_path: Path, name: str) -> None:
    path = HERE / name
    output, status = run_mypy(path, tmp_path)
    assert status == 1
    expected = {n for n, line in enumerate(path.read_text().splitlines(), 1) if "  # error" in line}
    reported = {int(m.group(1)) for m in re.finditer(rf"{re.escape(path.name)}:(\d+): error", output)}
    assert reported == expected, output
