"""gc never runs beside an apply: it takes the state lock for its whole run (an apply pushes an
image before recording it, so a gc in between would collect it); --dry-run only reads."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import copy_example, run_faasops
from faasops.engine import Engine


def test_gc_refuses_while_an_apply_holds_the_state_lock_and_dry_run_still_reports(tmp_path: Path) -> None:
    project = copy_example("hello", tmp_path)
    with Engine.load(project) as engine, engine.locked("faasops apply"):
        refused = run_faasops("-C", str(project), "gc")
        assert refused.code == 1
        assert "the state is locked by" in refused.err and "`faasops apply`" in refused.err
        assert "Traceback" not in refused.err

        dry = run_faasops("-C", str(project), "gc", "--dry-run", "--format", "json")
        assert dry.code == 0, dry.output
        assert json.loads(dry.out)["bytes"] == 0

    done = run_faasops("-C", str(project), "gc")
    assert done.code == 0, done.output
    assert "Freed 0 B." in done.out
