"""The Platform API benchmark's read part runs on a small project, and what it measures is what
it says: every listed function declared and deployed in sync, and the same-run baselines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_api_bench_reads_report_api_and_baseline_rows() -> None:
    finished = subprocess.run([sys.executable, str(ROOT / "bench" / "api_bench.py"), "--functions", "20",
                               "--reads", "3", "--details", "3", "--skip-patch"],
                              capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-4000:]
    rows = [line for line in finished.stdout.splitlines() if line.startswith("| ") and "ms" not in line]
    names = [row.split(" | ")[0] for row in rows]
    assert names == ["| API `GET /api/workspaces/bench/functions` (all 20)",
                     "| API `GET /api/workspaces/bench/functions/{fn}` (one)",
                     "| baseline: raw state read `state.read([ws])` (in-process)",
                     "| baseline: `faasops get functions bench --format json` (process)"]
    for row in rows:
        count, p50, p99 = (float(cell) for cell in row.strip("| ").split(" | ")[1:4])
        assert count >= 3 and 0 < p50 <= p99
