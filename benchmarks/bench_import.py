"""Import time: ``import cloudtasks_kit`` (and its first use) against ``import google.cloud.tasks_v2``,
each in fresh interpreters, median of several runs."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from typing import Any

SNIPPETS = {
    "tasks_v2": "import google.cloud.tasks_v2",
    "kit": "import cloudtasks_kit",
    "kit_client": "import cloudtasks_kit; cloudtasks_kit.CloudTasks",
}


# As an installed package is imported: from its bytecode. pip compiles the official client's at install
# time; an editable install of the kit has none until a first import writes it, which
# PYTHONDONTWRITEBYTECODE (set on some machines) forbids, so every run would compile the kit from source.
_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def _time(snippet: str) -> float:
    code = f"import time; t = time.perf_counter(); {snippet}; print(time.perf_counter() - t)"
    return float(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_ENV
        ).stdout
    )


def run(quick: bool = False) -> list[dict[str, Any]]:
    runs = 3 if quick else 7
    for snippet in SNIPPETS.values():  # compile and cache bytecode first
        _time(snippet)
    samples: dict[str, list[float]] = {name: [] for name in SNIPPETS}
    for _ in range(runs):  # interleaved, so that a busy spell on the machine hits every snippet alike
        for name, snippet in SNIPPETS.items():
            samples[name].append(_time(snippet))
    times = {name: statistics.median(values) for name, values in samples.items()}
    official = times["tasks_v2"]
    return [
        {
            "benchmark": "import cloudtasks_kit vs import google.cloud.tasks_v2",
            "kit": f"{times['kit'] * 1e3:.0f} ms",
            "official": f"{official * 1e3:.0f} ms",
            "ratio": times["kit"] / official,
            "target": "<= 1.20",
            "ok": times["kit"] / official <= 1.2,
        },
        {
            "benchmark": "import cloudtasks_kit and load CloudTasks (what an app pays) vs import tasks_v2",
            "kit": f"{times['kit_client'] * 1e3:.0f} ms",
            "official": f"{official * 1e3:.0f} ms",
            "ratio": times["kit_client"] / official,
            "target": "<= 1.10",
            "ok": times["kit_client"] / official <= 1.1,
        },
        _pytest_startup(runs * 3),  # 20 ms in half a second: more pairs than the imports need
    ]


def _pytest_startup(runs: int) -> dict[str, Any]:
    """pytest start-up with the kit's plugin registered against ``-p no:cloudtasks_kit``: every pytest run
    on a machine with the kit installed pays the difference."""
    import tempfile
    import time
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "test_empty.py").write_text("def test_nothing():\n    pass\n")

        def start(*options: str) -> float:
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, folder],
                capture_output=True,
                check=True,
                env=_ENV,
            )
            return time.perf_counter() - started

        with_kit: list[float] = []
        without: list[float] = []
        for run in range(runs):  # alternating which goes first; the figure is the median of the pairs'
            pair = [((), with_kit), (("-p", "no:cloudtasks_kit"), without)]
            for options, times in pair if run % 2 == 0 else reversed(pair):
                times.append(start(*options))
        # What the plugin imports, which no busy spell of the machine moves: -X importtime of both.
        imported = [_imports(folder, *options) for options in ((), ("-p", "no:cloudtasks_kit"))]
        added = {name: us for name, us in imported[0].items() if name not in imported[1]}
    extra = statistics.median(a - b for a, b in zip(with_kit, without, strict=True))
    return {
        "benchmark": "pytest start-up with the kit's plugin vs -p no:cloudtasks_kit",
        "kit": f"{statistics.median(with_kit) * 1e3:.0f} ms (median difference of the pairs: "
        f"{extra * 1e3:+.0f} ms; the plugin imports {len(added)} more modules, "
        f"{sum(added.values()) / 1e3:.1f} ms by -X importtime)",
        "official": f"{statistics.median(without) * 1e3:.0f} ms (without the plugin)",
        "ratio": None,
        "target": "within 20 ms",
        "ok": extra <= 0.020,
    }


def _imports(folder: str, *options: str) -> dict[str, int]:
    """Module name -> its own import time in microseconds, from one pytest start under -X importtime."""
    trace = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *options,
            folder,
        ],
        capture_output=True,
        text=True,
        check=True,
        env=_ENV,
    ).stderr
    found = {}
    for line in trace.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) == 3 and fields[0].strip().isdigit():
            found[fields[2].strip()] = int(fields[0])
    return found
