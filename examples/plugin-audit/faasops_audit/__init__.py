"""An example third-party faasops plugin.

- ``faasops_check_plan``: a policy that vetoes any plan deleting (or replacing) something unless
  the environment variable ``FAASOPS_ALLOW_DELETES=1`` is set. In CI the pull request's
  "allow-deletes" label sets it: on the pull request from the event, and on the push that merged
  it from the merged pull request's labels (:mod:`faasops_audit.approval`), for both the saved
  plan and the apply of that plan. The policy runs again when a saved plan is applied, so the
  approval must reach the apply job too (examples/ci/github-actions.yml).
- ``faasops_step_finished`` / ``faasops_post_apply``: an audit log, one JSON line per apply
  step, in ``.faasops/audit.jsonl`` (or ``$FAASOPS_AUDIT_LOG``).
- ``faasops_source_store``: sources type ``audit-archive`` (:mod:`faasops_audit.archive`), which
  keeps every deployed source archive; ``tests/test_conformance.py`` runs faasops' provider
  conformance kit against it.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from faasops import hookimpl

from faasops_audit import archive

_lock = threading.Lock()


def _log_path(project) -> Path:
    return Path(os.environ.get("FAASOPS_AUDIT_LOG") or project.state_dir / "audit.jsonl")


def _write(project, entry: dict) -> None:
    path = _log_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"time": datetime.now(timezone.utc).isoformat(), **entry}
    with _lock, path.open("a") as out:
        out.write(json.dumps(entry, sort_keys=True) + "\n")


@hookimpl
def faasops_check_plan(plan, project):
    if os.environ.get("FAASOPS_ALLOW_DELETES") == "1":
        return []
    deletes = [c.address for c in plan.changes if c.action.value in ("delete", "replace")]
    return [f"{address} would be deleted; set FAASOPS_ALLOW_DELETES=1 to allow it "
            "(in CI: the allow-deletes label on the pull request)" for address in deletes]


@hookimpl
def faasops_step_finished(project, address, step, status, message):
    _write(project, {"address": address, "step": step, "status": status})


@hookimpl
def faasops_post_apply(plan, project, result):
    _write(project, {"event": "apply-finished", "applied": sorted(result.applied), "failed": sorted(result.failed)})


@hookimpl
def faasops_provider_types():
    return [("sources", archive.TYPE, "every deployed source archive, kept in a directory for audits")]


@hookimpl
def faasops_source_store(config, project):
    return archive.from_options(config.options, project) if config.type == archive.TYPE else None
