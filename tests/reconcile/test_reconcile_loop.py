"""`faasops reconcile` as a running process: a local bare git repository as the remote, the
Kubernetes API emulator as the cluster, workspaces only (no builds), observed through real
kubectl, the round log lines and /metrics."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from cli_support import run_faasops
from testkit.faultproxy import delay
from testkit.kubeapi import KubeEmulator
from testkit.kubectl import KubectlRunner
from reconcile_support import (DeployRepository, Reconciler, manifest, namespace_exists, run_python, slow_kube,
                               wait_until)

DEMO = "- name: demo\n"
DEMO_AND_SHOP = "- name: demo\n- name: shop\n"


def repo_args(repo: DeployRepository, *extra: str) -> tuple[str, ...]:
    return ("--repo", str(repo.bare), "--branch", "main", "--interval", "1s", *extra)


def test_a_pushed_commit_is_applied_and_its_revision_shows_in_metrics(
        repo: DeployRepository, kubeconfig: Path, kubectl: KubectlRunner,
        start_reconciler: Callable[..., Reconciler]) -> None:
    first = repo.push(manifest(DEMO), "add demo")
    reconciler = start_reconciler(*repo_args(repo), env={"KUBECONFIG": str(kubeconfig)})

    applied = reconciler.wait_for_round("the first commit is applied", lambda r: r["outcome"] == "applied")

    assert applied["revision"] == first[:12] and applied["plan"] == "create demo" and applied["applied"] == "1"
    assert namespace_exists(kubectl, "demo")
    assert reconciler.labels("faasops_reconcile_revision_info")["revision"] == first
    assert reconciler.get("/readyz")[0] == 200 and reconciler.get("/healthz")[0] == 200

    second = repo.push(manifest(DEMO_AND_SHOP), "add shop")
    again = reconciler.wait_for_round("the second commit is applied",
                                      lambda r: r["outcome"] == "applied" and r["revision"] == second[:12],
                                      after=int(applied["round"]))

    assert again["plan"] == "create shop"
    assert namespace_exists(kubectl, "shop")
    wait_until(lambda: reconciler.labels("faasops_reconcile_revision_info")["revision"] == second,
               "the revision metric follows the branch", reconciler.log)
    # Rounds after that find nothing to do, and every applied change was counted once.
    reconciler.wait_for_round("a quiet round", lambda r: r["outcome"] == "no_changes", after=int(again["round"]))
    assert reconciler.metric("faasops_reconcile_changes_applied_total") == 2
    assert reconciler.metric("faasops_reconcile_rounds_total", outcome="failed") == 0
    assert reconciler.metric("faasops_reconcile_last_success_timestamp_seconds") > 0


def test_metrics_are_valid_prometheus_and_openmetrics_exposition(
        repo: DeployRepository, kubeconfig: Path, start_reconciler: Callable[..., Reconciler]) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    repo.push(manifest(DEMO))
    reconciler = start_reconciler(*repo_args(repo), env={"KUBECONFIG": str(kubeconfig)})
    reconciler.wait_for_round("a round", lambda r: r["outcome"] == "applied")

    status, body, content_type = reconciler.get("/metrics", accept="application/openmetrics-text; version=1.0.0")

    assert status == 200 and content_type.startswith("application/openmetrics-text")
    names = {family.name for family in text_string_to_metric_families(body)}
    assert {"faasops_reconcile_last_run_timestamp_seconds", "faasops_reconcile_last_run_duration_seconds",
            "faasops_reconcile_changes_applied", "faasops_reconcile_drift_found", "faasops_reconcile_failures",
            "faasops_reconcile_last_success_timestamp_seconds", "faasops_reconcile_revision",
            "faasops_reconcile_rounds", "faasops_reconcile_pending_changes"} <= names
    assert reconciler.get("/metrics")[2].startswith("text/plain; version=0.0.4")
    assert reconciler.get("/nothing-here")[0] == 404


def test_dry_run_reports_the_plan_and_changes_nothing(
        repo: DeployRepository, kubeconfig: Path, kubectl: KubectlRunner, tmp_path: Path,
        start_reconciler: Callable[..., Reconciler]) -> None:
    repo.push(manifest(DEMO_AND_SHOP))
    reconciler = start_reconciler(*repo_args(repo, "--dry-run"), env={"KUBECONFIG": str(kubeconfig)})

    first = reconciler.wait_for_round("a dry-run round", lambda r: r["outcome"] == "dry_run")
    reconciler.wait_for_round("a second dry-run round", lambda r: r["outcome"] == "dry_run", after=int(first["round"]))

    assert first["changes"] == "2" and first["plan"] == "create demo, create shop" and first["applied"] == "0"
    assert reconciler.metric("faasops_reconcile_pending_changes") == 2
    assert reconciler.metric("faasops_reconcile_changes_applied_total") == 0
    assert not namespace_exists(kubectl, "demo") and not namespace_exists(kubectl, "shop")
    assert reconciler.get("/readyz")[0] == 200
    reconciler.kill()
    plan = run_faasops("-C", str(tmp_path / "checkout"), "plan", "--detailed-exitcode",
                       env={"KUBECONFIG": str(kubeconfig)})
    assert plan.code == 2, plan.output  # still everything to do: nothing was recorded either


def test_an_unreachable_repository_backs_off_counts_failures_and_never_shows_its_credentials(
        kubeconfig: Path, start_reconciler: Callable[..., Reconciler]) -> None:
    url = "http://deployer:s3cret-token@127.0.0.1:9/acme/functions.git"  # port 9 (discard): refused
    reconciler = start_reconciler("--repo", url, "--interval", "1s", "--max-backoff", "4s",
                                  "--unhealthy-after", "1s", env={"KUBECONFIG": str(kubeconfig)})

    wait_until(lambda: len([r for r in reconciler.rounds() if r["outcome"] == "failed"]) >= 3,
               "three failed rounds", reconciler.log)
    wait_until(lambda: reconciler.get("/healthz")[0] == 503, "/healthz turns 503 after --unhealthy-after",
               reconciler.log)

    failed = [r for r in reconciler.rounds() if r["outcome"] == "failed"]
    assert all(r["stage"] == "fetch" for r in failed)
    assert [int(r["consecutive_failures"]) for r in failed[:3]] == [1, 2, 3]
    # Backoff: never sooner than the interval, never later than --max-backoff.
    assert all(1.0 <= float(r["next_in"].rstrip("s")) <= 4.0 for r in failed)
    assert "***@127.0.0.1:9" in failed[0]["error"]
    assert reconciler.metric("faasops_reconcile_failures_total", stage="fetch") >= 3
    assert reconciler.metric("faasops_reconcile_consecutive_failures") >= 3
    status, body, _ = reconciler.get("/healthz")
    assert status == 503 and "failing for" in body
    assert reconciler.get("/readyz")[0] == 503
    _, metrics, _ = reconciler.get("/metrics")
    assert "s3cret" not in reconciler.log() and "s3cret" not in metrics
    assert 'source="http://***@127.0.0.1:9/acme/functions.git@main"' in metrics


def test_a_repository_that_appears_later_is_reconciled_and_health_recovers(
        tmp_path: Path, kubeconfig: Path, kubectl: KubectlRunner,
        start_reconciler: Callable[..., Reconciler]) -> None:
    missing = tmp_path / "later" / "remote.git"
    reconciler = start_reconciler("--repo", str(missing), "--interval", "1s", "--max-backoff", "2s",
                                  "--unhealthy-after", "1s", env={"KUBECONFIG": str(kubeconfig)})
    wait_until(lambda: reconciler.get("/healthz")[0] == 503, "/healthz turns 503", reconciler.log)

    repo = DeployRepository.create(tmp_path / "later")
    revision = repo.push(manifest(DEMO))

    reconciler.wait_for_round("the repository is reconciled once it exists", lambda r: r["outcome"] == "applied")
    assert namespace_exists(kubectl, "demo")
    wait_until(lambda: reconciler.get("/healthz")[0] == 200, "/healthz recovers", reconciler.log)
    assert reconciler.metric("faasops_reconcile_consecutive_failures") == 0
    assert reconciler.labels("faasops_reconcile_revision_info")["revision"] == revision


def test_an_invalid_push_fails_the_round_keeps_the_last_good_state_and_a_fix_recovers(
        repo: DeployRepository, kubeconfig: Path, kubectl: KubectlRunner,
        start_reconciler: Callable[..., Reconciler]) -> None:
    good = repo.push(manifest(DEMO), "good")
    reconciler = start_reconciler(*repo_args(repo), env={"KUBECONFIG": str(kubeconfig)})
    applied = reconciler.wait_for_round("the good commit is applied", lambda r: r["outcome"] == "applied")

    bad = repo.push(manifest("- name: Not_A_DNS_Name\n"), "bad")
    failed = reconciler.wait_for_round("the invalid commit fails", lambda r: r["outcome"] == "failed",
                                       after=int(applied["round"]))

    assert failed["stage"] == "load" and failed["revision"] == bad[:12]
    assert "faas.yaml:" in failed["error"] and "Not_A_DNS_Name" in failed["error"]
    assert namespace_exists(kubectl, "demo")  # nothing was torn down
    info = reconciler.labels("faasops_reconcile_revision_info")
    assert (info["revision"], info["fetched"]) == (good, bad)
    assert reconciler.metric("faasops_reconcile_failures_total", stage="load") >= 1

    fixed = repo.push(manifest(DEMO_AND_SHOP), "fix")
    reconciler.wait_for_round("the fix is applied", lambda r: r["outcome"] == "applied" and r["revision"] == fixed[:12],
                              after=int(failed["round"]))
    assert namespace_exists(kubectl, "shop")
    assert reconciler.metric("faasops_reconcile_consecutive_failures") == 0


HOLD_LOCK = """
import sys
from pathlib import Path
from faasops.engine import Engine
with Engine.load(Path.cwd()) as engine:
    with engine.locked("faasops apply (a CI job)"):
        print("locked", flush=True)
        sys.stdin.read()
print("released", flush=True)
"""


def test_a_state_lock_held_by_another_run_skips_rounds_until_it_is_released(
        tmp_path: Path, kubeconfig: Path, kubectl: KubectlRunner,
        start_reconciler: Callable[..., Reconciler]) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "faas.yaml").write_text(manifest(DEMO))
    holder = run_python(HOLD_LOCK, project, {"KUBECONFIG": str(kubeconfig)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        reconciler = start_reconciler("--interval", "1s", directory=project, env={"KUBECONFIG": str(kubeconfig)})

        first = reconciler.wait_for_round("a round skipped for the lock", lambda r: r["outcome"] == "locked")
        reconciler.wait_for_round("another skipped round", lambda r: r["outcome"] == "locked", after=int(first["round"]))

        assert "faasops apply (a CI job)" in first["error"]
        assert not namespace_exists(kubectl, "demo")
        assert reconciler.metric("faasops_reconcile_rounds_total", outcome="locked") >= 2
        assert reconciler.metric("faasops_reconcile_rounds_total", outcome="failed") == 0
        assert reconciler.get("/healthz")[0] == 200

        holder.communicate("", timeout=60)  # the CI job ends and releases the lock
        reconciler.wait_for_round("the round after the release applies", lambda r: r["outcome"] == "applied")
        assert namespace_exists(kubectl, "demo")
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_sigterm_during_an_apply_finishes_the_running_step_releases_the_lock_and_exits_0(
        repo: DeployRepository, kube: KubeEmulator, kubeconfig: Path, kubectl: KubectlRunner, tmp_path: Path,
        start_reconciler: Callable[..., Reconciler]) -> None:
    proxy, slow_config = slow_kube(kube, tmp_path)
    try:
        # The namespace's server-side apply is answered late: SIGTERM arrives while it runs.
        proxy.inject(delay(3, forward=True), method="PATCH", path=r"^/api/v1/namespaces/demo", times=1)
        repo.push(manifest(DEMO))
        reconciler = start_reconciler(*repo_args(repo), env={"KUBECONFIG": str(slow_config)})
        wait_until(lambda: proxy.stats()["injected"].get("delay-forward"), "the apply is under way", reconciler.log)

        reconciler.signal(signal.SIGTERM)

        assert reconciler.wait() == 0, reconciler.log()
        log = reconciler.log()
        assert "SIGTERM received: finishing the running steps" in log
        assert "demo: namespace completed" in log
        assert "stopped by SIGTERM after 1 round(s); the state lock is released" in log
        assert namespace_exists(kubectl, "demo")
        # The step was recorded and the lock released: a plan right after has nothing to do.
        plan = run_faasops("-C", str(tmp_path / "checkout"), "plan", "--detailed-exitcode",
                           env={"KUBECONFIG": str(kubeconfig)})
        assert plan.code == 0, plan.output
    finally:
        proxy.stop()


def test_sigterm_between_rounds_exits_0_at_once(
        repo: DeployRepository, kubeconfig: Path, start_reconciler: Callable[..., Reconciler]) -> None:
    repo.push(manifest(DEMO))
    reconciler = start_reconciler(*repo_args(repo)[:-2], "--interval", "1h", env={"KUBECONFIG": str(kubeconfig)})
    reconciler.wait_for_round("the first round", lambda r: r["outcome"] == "applied")

    reconciler.signal(signal.SIGTERM)

    assert reconciler.wait() == 0, reconciler.log()
    assert "stopped by SIGTERM after 1 round(s)" in reconciler.log()


def test_a_reconciler_killed_mid_apply_is_succeeded_by_one_that_converges(
        repo: DeployRepository, kube: KubeEmulator, kubeconfig: Path, kubectl: KubectlRunner, tmp_path: Path,
        start_reconciler: Callable[..., Reconciler]) -> None:
    proxy, slow_config = slow_kube(kube, tmp_path)
    try:
        # The namespace's apply never reaches the cluster: SIGKILL lands while it is held.
        proxy.inject(delay(60), method="PATCH", path=r"^/api/v1/namespaces/demo")
        repo.push(manifest(DEMO_AND_SHOP))
        first = start_reconciler(*repo_args(repo), env={"KUBECONFIG": str(slow_config)})
        wait_until(lambda: proxy.stats()["injected"].get("delay"), "the apply is under way", first.log)

        first.kill()  # SIGKILL: no handler runs, the lock stays behind

        assert first.process.returncode == -signal.SIGKILL
        successor = start_reconciler(*repo_args(repo), env={"KUBECONFIG": str(kubeconfig)})
        took_over = successor.wait_for_round("the successor applies what is left", lambda r: r["outcome"] == "applied")
        successor.wait_for_round("the successor has converged", lambda r: r["outcome"] == "no_changes",
                                 after=int(took_over["round"]))
    finally:
        proxy.stop()
    assert namespace_exists(kubectl, "demo") and namespace_exists(kubectl, "shop")
    assert successor.metric("faasops_reconcile_rounds_total", outcome="locked") == 0  # took the stale lock over
    tasks = run_faasops("-C", str(tmp_path / "checkout"), "tasks", "--format", "json", "--limit", "50",
                        env={"KUBECONFIG": str(kubeconfig)})
    assert tasks.code == 0, tasks.output
    assert "interrupted: the run ended before this step finished" in tasks.out


def test_invalid_options_are_one_line_errors(tmp_path: Path) -> None:
    for args, message in [
        (("--interval", "soon"), "invalid duration 'soon'"),
        (("--interval", "1m", "--max-backoff", "30s"), "--max-backoff 30s is shorter than --interval 1m"),
        (("--branch", "dev"), "--branch and --path need --repo"),
        (("--listen", "nowhere"), "--listen 'nowhere': use HOST:PORT"),
    ]:
        result = run_faasops("-C", str(tmp_path), "reconcile", *args)
        assert result.code == 1, result.output
        assert message in result.err and "Traceback" not in result.err


def test_a_non_empty_directory_that_is_not_a_clone_is_refused(
        tmp_path: Path, start_reconciler: Callable[..., Reconciler], repo: DeployRepository) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine\n")
    repo.push(manifest(DEMO))
    reconciler = start_reconciler(*repo_args(repo), directory=occupied)

    failed = reconciler.wait_for_round("the round fails", lambda r: r["outcome"] == "failed")

    assert "is not empty and not a clone" in failed["error"]
    assert (occupied / "notes.txt").read_text() == "mine\n"




def test_a_second_sigterm_abandons_a_stuck_step_and_the_next_reconciler_takes_the_lock_over(
        repo: DeployRepository, kube: KubeEmulator, kubeconfig: Path, kubectl: KubectlRunner, tmp_path: Path,
        start_reconciler: Callable[..., Reconciler]) -> None:
    proxy, slow_config = slow_kube(kube, tmp_path)
    try:
        proxy.inject(delay(120), method="PATCH", path=r"^/api/v1/namespaces/demo")
        repo.push(manifest(DEMO))
        first = start_reconciler(*repo_args(repo), env={"KUBECONFIG": str(slow_config)})
        wait_until(lambda: proxy.stats()["injected"].get("delay"), "the apply is under way", first.log)

        first.signal(signal.SIGTERM)
        wait_until(lambda: "finishing the running steps" in first.log(), "the first SIGTERM is acknowledged", first.log)
        first.signal(signal.SIGTERM)

        assert first.wait() == 128 + signal.SIGTERM, first.log()
        assert "aborted by SIGTERM while demo namespace still ran" in first.log()
        assert "outcome=interrupted" in first.log()
        successor = start_reconciler(*repo_args(repo), env={"KUBECONFIG": str(kubeconfig)})
        successor.wait_for_round("the successor applies", lambda r: r["outcome"] == "applied")
    finally:
        proxy.stop()
    assert namespace_exists(kubectl, "demo")
