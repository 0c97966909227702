"""Run the benchmarks and print each figure beside the official client's, measured in the same run.

    python benchmarks/run.py              # all of them (about two minutes)
    python benchmarks/run.py fake create  # some of them
    python benchmarks/run.py --quick      # smaller counts, for a smoke run

Results also go to benchmarks/results/latest.json. Targets are checked and reported, never asserted in
unit tests: timing belongs here.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_bulk
import bench_create
import bench_dashboard
import bench_delivery
import bench_durability
import bench_fake
import bench_floor
import bench_import
import bench_scale
import bench_stack
import bench_tracing

SUITES = {
    "fake": bench_fake,
    "create": bench_create,
    "delivery": bench_delivery,
    "bulk": bench_bulk,
    "import": bench_import,
    "scale": bench_scale,
    "floor": bench_floor,
    "durability": bench_durability,
    "dashboard": bench_dashboard,
    "tracing": bench_tracing,
    "stack": bench_stack,
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("suites", nargs="*", choices=[*SUITES, []], help="which benchmarks (default: all)")
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    args = parser.parse_args()
    chosen = args.suites or list(SUITES)
    print(f"Python {platform.python_version()} on {platform.machine()}, {time.strftime('%Y-%m-%d %H:%M')}")
    results = []
    for name in chosen:
        print(f"\n== {name}", flush=True)
        for result in SUITES[name].run(quick=args.quick):
            results.append(result)
            ratio = f"{result['ratio']:.3f}" if result["ratio"] is not None else "-"
            verdict = "ok" if result["ok"] else "MISSED"
            print(f"{result['benchmark']}\n    kit: {result['kit']}   official: {result['official']}")
            print(f"    ratio: {ratio}   target: {result['target']}   {verdict}", flush=True)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    missed = [r["benchmark"] for r in results if not r["ok"]]
    print(
        f"\n{len(results) - len(missed)} of {len(results)} targets met"
        + (f"; missed: {missed}" if missed else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
