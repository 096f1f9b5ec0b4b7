"""Benchmark: how fast, and in how little memory, hostile source archives are refused.

Run: ``.venv/bin/python bench/archive_bench.py [--scale 1.0] [--baseline-timeout 60] [--append BENCHMARKS.md]``

Each case of :data:`testkit.hostile_archives.CASES` (an 800 MiB PAX header compressed to
~815 KB, a GNU long name of the same size, a PAX header of digits, 200,000 members, a gzip bomb,
links, devices, bad names …) is written to a file, then read in a fresh Python process twice:

* **faasops**: :func:`faasops.source_archive.extract_source_archive` into a scratch directory,
  with the Builder service's default limits — what an upload to ``faasops builder serve`` and the
  componentize builder run;
* **tarfile**: the baseline, Python's plain ``tarfile.open(…, "r:gz")`` listing the members, as
  the service did before (killed after ``--baseline-timeout`` seconds).

Wall time is the process's from start to exit and peak RSS its own ``VmHWM`` (``ru_maxrss`` would
count the forking parent's memory), both including starting Python (~0.1 s, ~10 MB here). The goal: every hostile archive within the
upload limit refused in < 2 s using < 100 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the test services (testkit)

from testkit.hostile_archives import CASES, Case, valid_archive  # noqa: E402

GOAL_SECONDS = 2.0
GOAL_RSS_MB = 100.0
SECTION = "## Hostile source archives (`bench/archive_bench.py`)"

_CHILD = """
import io, json, sys, tarfile, tempfile, time
from pathlib import Path
mode, path = sys.argv[1], sys.argv[2]
data = Path(path).read_bytes()
if mode == "faasops":
    from faasops.source_archive import ArchiveError, extract_source_archive
started = time.perf_counter()
try:
    if mode == "faasops":
        with tempfile.TemporaryDirectory() as scratch:
            try:
                members = extract_source_archive(data, Path(scratch))
                outcome = f"accepted ({len(members)} members)"
            except ArchiveError as exc:
                outcome = "refused" + (f" ({exc.limit})" if exc.limit else "")
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            outcome = f"listed {len(tar.getmembers())} members"
except Exception as exc:
    outcome = f"{type(exc).__name__}"
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps([outcome, int(hwm.split()[1]), time.perf_counter() - started]))
"""


@dataclass
class Run:
    outcome: str
    seconds: float  # the process, start to exit
    rss_mb: float
    call_seconds: float | None = None  # the check alone (None: killed)


def _peak_kib(pid: int) -> int:
    """The process's own peak RSS (``VmHWM``, which ``exec`` starts afresh — unlike ``ru_maxrss``,
    which keeps the forking parent's)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])
    except (OSError, StopIteration, ValueError):
        return 0


def run_child(mode: str, path: Path, timeout: float) -> Run:
    """One fresh process reading ``path``: its wall time and peak RSS (reported by the process
    itself, or sampled from /proc when it has to be killed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, mode, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    sampled = 0
    deadline = started + timeout
    while proc.poll() is None:
        sampled = max(sampled, _peak_kib(proc.pid))
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            break
        time.sleep(0.02)
    seconds = time.monotonic() - started
    out = proc.stdout.read() if proc.stdout else b""
    if proc.returncode < 0:
        return Run(f"killed after {timeout:g} s", seconds, sampled / 1024)
    try:
        outcome, peak, call = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Run(f"exit {proc.returncode}", seconds, sampled / 1024)
    return Run(outcome, seconds, max(peak, sampled) / 1024, call)


@dataclass
class Row:
    case: str
    what: str
    compressed: int
    ours: Run
    baseline: Run | None


def measure(cases: list[Case], scale: float, baseline_timeout: float) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="faasops-archive-bench-") as tmp:
        for case in [Case("valid-hello", 202, lambda s: valid_archive(), "the hello handler (accepted)"), *cases]:
            path = Path(tmp) / f"{case.name}.bin"
            path.write_bytes(case.make(scale))
            ours = run_child("faasops", path, 60)
            baseline = run_child("tarfile", path, baseline_timeout) if baseline_timeout > 0 else None
            rows.append(Row(case.name, case.what, path.stat().st_size, ours, baseline))
            print(f"  {case.name}: {ours.outcome} {ours.seconds:.2f} s {ours.rss_mb:.0f} MB"
                  + (f" | tarfile: {baseline.outcome} {baseline.seconds:.2f} s {baseline.rss_mb:.0f} MB"
                     if baseline else ""), file=sys.stderr)
    return rows


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} KB"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.1f} ms" if value < 0.1 else f"{value:.2f} s"


def table(rows: list[Row]) -> str:
    lines = [
        "| case | upload | faasops | check | process | peak RSS | tarfile.open | check | process | peak RSS "
        "| check ratio | RSS ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = row.baseline
        cells = [f"`{row.case}`", _size(row.compressed), row.ours.outcome, _seconds(row.ours.call_seconds),
                 _seconds(row.ours.seconds), f"{row.ours.rss_mb:.0f} MB"]
        if base is None:
            cells += ["–"] * 6
        else:
            quotient = max(base.call_seconds or base.seconds, 1e-4) / max(row.ours.call_seconds or 0, 1e-4)
            ratio = f"{quotient:.0f}×" if quotient >= 10 else f"{quotient:.1f}×"
            ratio += "+" if base.call_seconds is None else ""  # killed: at least this
            cells += [base.outcome, _seconds(base.call_seconds), _seconds(base.seconds), f"{base.rss_mb:.0f} MB",
                      ratio, f"{base.rss_mb / row.ours.rss_mb:.1f}×"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(rows: list[Row]) -> str:
    hostile = rows[1:]
    worst_s = max(row.ours.call_seconds if row.ours.call_seconds is not None else row.ours.seconds
                  for row in hostile)
    worst_mb = max(row.ours.rss_mb for row in hostile)
    accepted = [row.case for row in hostile if not row.ours.outcome.startswith("refused")]
    ok = worst_s < GOAL_SECONDS and worst_mb < GOAL_RSS_MB and not accepted
    return (f"Every hostile case refused: {'yes' if not accepted else 'NO: ' + ', '.join(accepted)}; slowest "
            f"{_seconds(worst_s)}, largest peak RSS {worst_mb:.0f} MB (goal < {GOAL_SECONDS:g} s, < {GOAL_RSS_MB:g} MB): "
            f"{'met' if ok else 'NOT met'}. (Slowest is the check alone; a whole process, Python's start and "
            f"imports included, took at most {max(row.ours.seconds for row in hostile):.2f} s.)")


def section(rows: list[Row], scale: float, baseline_timeout: float) -> str:
    return "\n".join([
        SECTION, "",
        f"`bench/archive_bench.py --scale {scale:g}` ({time.strftime('%Y-%m-%d')}, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end). Each archive is read in a fresh process: "
        "**faasops** is `faasops.source_archive.extract_source_archive` with the Builder service's default "
        "limits (what `faasops builder serve` and the componentize builder run); **tarfile.open** is "
        "Python's plain `tarfile.open(…, 'r:gz')` listing the members, the way uploads were read before "
        f"(killed after {baseline_timeout:g} s). *check* is the call alone, *process* the fresh process from start "
        "to exit; peak RSS (`VmHWM`) is the process's own, Python's start (~10 MB; ~20 MB with faasops' "
        "imports) included. The ratios are tarfile ÷ faasops; below 1× on the small cases is faasops' extra "
        "work (it extracts; the baseline only lists) and imports.", "",
        table(rows), "",
        verdict(rows), "",
    ])


def append(path: Path, text: str) -> None:
    """Add ``text`` at the end of ``path``, replacing an earlier run's section (always the last)."""
    current = path.read_text() if path.exists() else ""
    if SECTION in current:
        current = current[:current.index(SECTION)]
    path.write_text(current.rstrip("\n") + "\n\n" + text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="size of the big cases (1.0: the review's)")
    parser.add_argument("--baseline-timeout", type=float, default=60.0, help="seconds before tarfile is killed; 0 skips it")
    parser.add_argument("--cases", nargs="*", help="only these case names")
    parser.add_argument("--append", type=Path, help="add the results as the last section of this file")
    args = parser.parse_args()
    cases = [case for case in CASES if not args.cases or case.name in args.cases]
    rows = measure(cases, args.scale, args.baseline_timeout)
    text = section(rows, args.scale, args.baseline_timeout)
    print(text)
    if args.append:
        append(args.append, text)


if __name__ == "__main__":
    main()
