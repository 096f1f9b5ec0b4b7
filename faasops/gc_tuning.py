"""Fewer garbage collections for a process that builds large, long-lived object graphs.

A plan of 10,000 functions creates millions of dicts, lists and strings (decoded JSON, specs,
changes) that all stay alive until it is done; with CPython's default thresholds (a collection
every 700 allocations) the cyclic collector walks them again and again — about a quarter of such
a plan's CPU time. Reference counting frees almost everything here; the collector is only needed
for cycles, which are rare.

GC thresholds are process-wide, so library code (the engine, the manifest loader) never changes
them: a program that embeds faasops keeps its own settings. Only an entry point — the ``faasops``
command, a benchmark's worker — calls :func:`relax_for_process` once, before any work.
"""

from __future__ import annotations

import gc

# A young-generation collection every 100,000 allocations instead of every 700.
RELAXED_THRESHOLDS = (100_000, 50, 100)


def relax_for_process() -> None:
    """Raise the collector's thresholds for the rest of this process (entry points only)."""
    gc.set_threshold(*RELAXED_THRESHOLDS)
