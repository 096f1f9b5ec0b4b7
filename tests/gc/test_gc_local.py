"""`faasops gc` and `destroy --purge` on the local backend, with real builds (reused from the
shared test build cache) and the local runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from gc_support import EDITS, make_local_project, write_handler


def _wasm_blobs(project_files: dict[str, int]) -> set[str]:
    # Components are the only blobs of megabytes; configs, locked apps and manifests are small.
    return {path for path, size in project_files.items() if path.startswith("oci/blobs/") and size > 1_000_000}


@pytest.mark.slow
def test_gc_keep_1_after_three_edits_frees_the_oldest_artifact_and_rollback_still_works(
        tmp_path: Path, shared_build_cache: Path) -> None:
    project = make_local_project(tmp_path, shared_build_cache)
    artifacts = []
    for text in EDITS:
        write_handler(project.root, text)
        applied = project.faasops("apply", "--auto-approve")
        assert applied.code == 0, applied.output
        assert text in project.invoke()  # compiles it into the runtime cache
        artifacts.append(project.running())
    project.give_back()
    before = project.files()
    assert len(_wasm_blobs(before)) == 3

    dry = project.gc("--keep", "1", "--dry-run")
    assert project.files() == before  # nothing removed
    assert dry["dry_run"] is True
    assert dry["kinds"]["image"]["count"] == 1 and dry["kinds"]["build"]["count"] == 1
    assert dry["kinds"]["source"]["count"] == 1 and dry["kinds"]["compiled"]["count"] == 1

    freed = project.gc("--keep", "1")
    after = project.files()
    gone = {path: size for path, size in before.items() if path not in after}
    assert after.keys() <= before.keys()
    # What the report says it freed is exactly what left the disk, kind by kind.
    assert freed["bytes"] == sum(gone.values()) == dry["bytes"] > 30_000_000
    assert freed["kinds"] == dry["kinds"]
    assert freed["kinds"]["build"]["bytes"] == sum(s for p, s in gone.items() if p.startswith("builds/"))
    assert freed["kinds"]["compiled"]["bytes"] == sum(s for p, s in gone.items() if p.startswith("runtime-cache/"))
    assert freed["kinds"]["source"]["bytes"] == sum(s for p, s in gone.items() if p.startswith("sources/"))
    assert freed["kinds"]["blob"]["bytes"] == sum(s for p, s in gone.items() if p.startswith("oci/"))
    # The oldest component went; the running one and the one before it stayed.
    assert len(_wasm_blobs(after)) == 2 and _wasm_blobs(after) < _wasm_blobs(before)
    oldest = artifacts[0].rpartition("@sha256:")[2]
    assert f"oci/blobs/sha256/{oldest}" in gone

    # Nothing left to collect at the same setting.
    assert project.gc("--keep", "1")["bytes"] == 0

    # The running function still serves, and rollback within the kept window works.
    assert EDITS[2] in project.invoke()
    rolled = project.faasops("rollback", "demo/hello")
    assert rolled.code == 0, rolled.output
    assert project.running() == artifacts[1]
    assert EDITS[1] in project.invoke()
    # Beyond the window: the collected artifact is no longer offered.
    too_far = project.faasops("rollback", "demo/hello")
    assert too_far.code == 1
    assert "only 0 earlier artifact(s) are recorded" in too_far.err
    # Rolled back, the newer artifact (what apply rolls forward to) stays through gc.
    assert project.gc("--keep", "0")["bytes"] == 0
    assert project.faasops("rollback", "demo/hello", "--to", artifacts[2].rpartition("@")[2]).code == 0
    assert EDITS[2] in project.invoke()


@pytest.mark.slow
def test_gc_dry_run_reports_what_would_go_and_removes_nothing(tmp_path: Path, shared_build_cache: Path) -> None:
    project = make_local_project(tmp_path, shared_build_cache, EDITS[:2])
    for text in EDITS[:2]:
        write_handler(project.root, text)
        assert project.faasops("apply", "--auto-approve").code == 0
    before = project.files()
    text = project.faasops("gc", "--keep", "0", "--dry-run")
    assert text.code == 0, text.output
    assert project.files() == before
    assert "Would free" in text.out and "1 image(s)" in text.out and "1 build(s)" in text.out
    # Nothing is recorded either: rollback still offers the earlier artifact.
    assert project.faasops("rollback", "demo/hello").code == 0


@pytest.mark.slow
def test_destroy_purge_removes_every_local_artifact(tmp_path: Path, shared_build_cache: Path) -> None:
    project = make_local_project(tmp_path, shared_build_cache, EDITS[:1])
    assert project.faasops("apply", "--auto-approve").code == 0
    assert EDITS[0] in project.invoke()
    project.give_back()
    assert project.files()
    destroyed = project.faasops("destroy", "--auto-approve", "--purge")
    assert destroyed.code == 0, destroyed.output
    assert "Destroy complete!" in destroyed.out and "Freed" in destroyed.out
    assert project.files() == {"oci/index.json": project.files().get("oci/index.json", 0),
                               "oci/oci-layout": project.files().get("oci/oci-layout", 0)}
