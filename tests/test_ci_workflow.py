"""What CI needs: saved plans, the state lock, targeting, partial failure — on the local backend."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

from cli_support import REPO, run_faasops

THREE = """\
apiVersion: faasops/v1
project: ci
workspaces:
  - name: shop
    functions:
      - name: cart
        source: functions/cart
      - name: pay
        source: functions/pay
        secrets:
          - name: STRIPE_KEY
            kubernetes: {secret: stripe, key: api-key}
  - name: blog
    functions:
      - name: feed
        source: functions/feed
"""


def three_functions(root: Path) -> Path:
    hello = REPO / "examples" / "hello" / "functions" / "hello"
    for name in ("cart", "pay", "feed"):
        shutil.copytree(hello, root / "functions" / name)
    (root / "faas.yaml").write_text(THREE)
    return root


def applied_functions(root: Path) -> list[str]:
    with sqlite3.connect(root / ".faasops" / "state.db") as db:
        return sorted(f"{w}/{n}" for w, n in db.execute("SELECT workspace, name FROM functions"))


def wait_for(predicate, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def lock_row(root: Path) -> tuple | None:
    try:
        with sqlite3.connect(root / ".faasops" / "state.db") as db:
            return db.execute("SELECT id, holder, host, pid FROM locks").fetchone()
    except sqlite3.OperationalError:
        return None


def test_saved_plan_applies_exactly_and_is_refused_once_stale(tmp_path: Path) -> None:
    root = three_functions(tmp_path)
    first = run_faasops("-C", str(root), "plan", "--out", "first.json", "-t", "shop/cart", cwd=root)
    assert first.code == 0, first.output
    second = run_faasops("-C", str(root), "plan", "--out", "second.json", "-t", "blog", cwd=root)
    assert second.code == 0, second.output
    saved = json.loads((root / "first.json").read_text())
    assert {c["address"] for c in saved["changes"]} == {"shop", "shop/cart"}

    applied = run_faasops("-C", str(root), "apply", "first.json", cwd=root)  # no prompt for a saved plan
    assert applied.code == 0, applied.output
    assert applied_functions(root) == ["shop/cart"]

    stale = run_faasops("-C", str(root), "apply", "second.json", cwd=root)
    assert stale.code == 1
    assert "the plan is stale: the state changed since it was made" in stale.err
    assert applied_functions(root) == ["shop/cart"]


def test_saved_plan_is_refused_when_sources_changed(tmp_path: Path) -> None:
    root = three_functions(tmp_path)
    assert run_faasops("-C", str(root), "plan", "--out", "plan.json", cwd=root).code == 0
    handler = root / "functions" / "feed" / "app.py"
    handler.write_text(handler.read_text() + "\n# edited after the plan\n")
    refused = run_faasops("-C", str(root), "apply", "plan.json", cwd=root)
    assert refused.code == 1
    assert "the manifests or function sources changed since the plan was made" in refused.err
    assert not (root / ".faasops" / "state.db").exists() or applied_functions(root) == []
    combined = run_faasops("-C", str(root), "apply", "plan.json", "-t", "blog", cwd=root)
    assert combined.code == 1 and "don't combine PLANFILE" in combined.err


def test_plan_outputs_show_secret_references_as_sensitive_only(tmp_path: Path) -> None:
    root = three_functions(tmp_path)
    assert run_faasops("-C", str(root), "plan", "--out", "plan.json", cwd=root).code == 0
    text = (root / "plan.json").read_text()
    assert "stripe" not in text and "api-key" not in text
    change = next(c for c in json.loads(text)["changes"] if c["address"] == "shop/pay")
    assert change["after"]["secrets"] is None or "sensitive" in json.dumps(change["fields"])
    shown = run_faasops("-C", str(root), "plan", cwd=root).out
    assert "secrets: (sensitive) changed" in shown and "stripe" not in shown


def test_targets_excludes_and_changed_since_select_exactly(tmp_path: Path) -> None:
    root = three_functions(tmp_path)

    def planned(*args: str) -> set[str]:
        result = run_faasops("-C", str(root), "plan", "--format", "json", *args)
        assert result.code == 0, result.output
        return {c["address"] for c in json.loads(result.out)["changes"] if c["kind"] == "function"}

    assert planned("-t", "shop/pay") == {"shop/pay"}
    assert planned("-t", "shop") == {"shop/cart", "shop/pay"}
    assert planned("-t", "shop", "--exclude", "shop/cart") == {"shop/pay"}
    assert planned("-t", "blog/feed", "-t", "shop/cart") == {"blog/feed", "shop/cart"}

    git = lambda *a: subprocess.run(["git", *a], cwd=root, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "base", "--allow-empty")
    git("add", ".")
    git("-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "functions")
    assert planned("--changed-since", "HEAD") == set()
    handler = root / "functions" / "pay" / "app.py"
    handler.write_text(handler.read_text() + "\n# changed\n")
    assert planned("--changed-since", "HEAD") == {"shop/pay"}
    (root / "faas.yaml").write_text(THREE.replace("source: functions/feed", "source: functions/feed\n        env: {A: b}"))
    assert planned("--changed-since", "HEAD") == {"shop/pay", "blog/feed"}
    assert planned("--changed-since", "HEAD~1") == {"shop/pay", "shop/cart", "blog/feed"}  # all new since
    bad = run_faasops("-C", str(root), "plan", "--changed-since", "no-such-ref")
    assert bad.code == 1 and "git rev-parse" in bad.err


def test_continue_on_error_deploys_the_others_and_next_plan_lists_only_the_failed(tmp_path: Path) -> None:
    root = three_functions(tmp_path)
    broken = root / "functions" / "pay" / "app.py"
    broken.write_text(f"import not_a_module_{uuid.uuid4().hex}\n" + broken.read_text())

    result = run_faasops("-C", str(root), "apply", "--auto-approve", "--continue-on-error", "-p", "1")
    assert result.code == 1
    assert "Apply failed: 1 failed" in result.err
    assert "shop/pay:" in result.err and "No module named" in result.err
    assert applied_functions(root) == ["blog/feed", "shop/cart"]

    after = run_faasops("-C", str(root), "plan", "--format", "json")
    remaining = [c["address"] for c in json.loads(after.out)["changes"] if c["action"] != "no-op"]
    assert remaining == ["shop/pay"]


def test_first_failure_stops_new_work_by_default(tmp_path: Path) -> None:
    root = three_functions(tmp_path)
    broken = root / "functions" / "cart" / "app.py"  # cart is the first function planned
    broken.write_text(f"import not_a_module_{uuid.uuid4().hex}\n" + broken.read_text())
    result = run_faasops("-C", str(root), "apply", "--auto-approve", "-p", "1")
    assert result.code == 1
    assert "not started:" in result.err
    assert "shop/pay" in result.err.split("not started:")[1]
    assert "shop/pay" not in applied_functions(root)


def test_second_apply_is_blocked_while_the_first_holds_the_lock_and_kill_9_frees_it(tmp_path: Path) -> None:
    root = three_functions(tmp_path)
    # A unique source so the first apply really builds (and holds the lock for seconds).
    handler = root / "functions" / "feed" / "app.py"
    handler.write_text(handler.read_text() + f"\n# {uuid.uuid4()}\n")
    first = subprocess.Popen([sys.executable, "-m", "faasops.cli", "-C", str(root), "apply", "--auto-approve"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: lock_row(root) is not None, what="the first apply to take the lock")
        lock_id, holder, host, pid = lock_row(root)
        assert pid == first.pid and host == socket.gethostname()

        blocked = run_faasops("-C", str(root), "apply", "--auto-approve", "--lock-timeout", "1")
        assert blocked.code == 1
        assert f"the state is locked by {holder} on {host} (pid {first.pid}" in blocked.err
        assert f"faasops force-unlock {lock_id}" in blocked.err
    finally:
        first.send_signal(signal.SIGKILL)  # also when an assertion failed: no apply outlives the test
        first.wait()
    recovered = run_faasops("-C", str(root), "apply", "--auto-approve")
    assert recovered.code == 0, recovered.output
    assert applied_functions(root) == ["blog/feed", "shop/cart", "shop/pay"]
    assert lock_row(root) is None


def test_lock_of_another_host_expires_or_can_be_force_unlocked(tmp_path: Path) -> None:
    root = three_functions(tmp_path)
    assert run_faasops("-C", str(root), "apply", "--auto-approve", "-t", "blog").code == 0

    def plant(expires: str) -> None:
        with sqlite3.connect(root / ".faasops" / "state.db") as db:
            db.execute("INSERT OR REPLACE INTO locks VALUES ('state', 'abc123', 'ci', 'runner-7', 4242, "
                       "'faasops apply', '2026-01-01T00:00:00Z', ?, 'https://ci.example/run/9')", (expires,))

    plant("2999-01-01T00:00:00.000000Z")  # a live lease held elsewhere
    blocked = run_faasops("-C", str(root), "apply", "--auto-approve")
    assert blocked.code == 1 and "on runner-7 (pid 4242" in blocked.err and "https://ci.example/run/9" in blocked.err
    wrong = run_faasops("-C", str(root), "force-unlock", "nope")
    assert wrong.code == 1 and "does not match the current lock 'abc123'" in wrong.err
    assert run_faasops("-C", str(root), "force-unlock", "abc123").code == 0
    assert run_faasops("-C", str(root), "apply", "--auto-approve", "-t", "shop/cart").code == 0

    plant("2000-01-01T00:00:00.000000Z")  # an expired lease: taken over without help
    assert run_faasops("-C", str(root), "apply", "--auto-approve").code == 0
    assert applied_functions(root) == ["blog/feed", "shop/cart", "shop/pay"]
