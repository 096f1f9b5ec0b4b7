"""`faasops gc` and `destroy --purge` on the AWS stack: DynamoDB, S3 and the ECR API on a real
moto server, images in Debian's docker-registry (behind the ECR token), SpinApps on the
Kubernetes API emulator — the fixtures of tests/test_cloud_e2e.py. Two projects share the
table, the bucket and the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import urllib3
import yaml

from gc_support import EDITS, write_handler
from test_cloud_e2e import Cloud, cloud  # noqa: F401  (the module-scoped services fixture)

BUCKET = "acme-faasops-sources"
OCI_ACCEPT = "application/vnd.oci.image.manifest.v1+json"


def make_project(cloud: Cloud, root: Path, name: str, workspace: str) -> Path:
    """One function (``<workspace>/hello``) in project ``name`` on the cloud providers."""
    project = root / name
    (project / "functions" / "hello").mkdir(parents=True)
    write_handler(project, EDITS[0])
    (project / "faas.yaml").write_text(yaml.safe_dump({
        "apiVersion": "faasops/v1", "project": name, "backend": "aws",
        "providers": {
            "state": {"type": "dynamodb", "table": "faasops-state", "region": "eu-west-1"},
            "sources": {"type": "s3", "bucket": BUCKET, "region": "eu-west-1"},
            "registry": {"type": "ecr", "region": "eu-west-1"},
            "deployer": {"type": "kubernetes", "wait": False},
        },
        "workspaces": [{"name": workspace, "functions": [{"name": "hello", "source": "functions/hello"}]}],
    }))
    cloud.overlay(project)
    return project


def apply_edits(cloud: Cloud, project: Path, texts: tuple[str, ...]) -> list[str]:
    """Apply each handler text in turn; the artifacts deployed, oldest first."""
    deployed = []
    for text in texts:
        write_handler(project, text)
        applied = cloud.faasops(project, "apply", "--auto-approve")
        assert applied.code == 0, applied.output
        deployed.append(running(cloud, project))
    return deployed


def running(cloud: Cloud, project: Path) -> str:
    listed = cloud.faasops(project, "get", "functions", "--format", "json")
    assert listed.code == 0, listed.output
    return json.loads(listed.out)[0]["artifact"]


def live_image(cloud: Cloud, namespace: str) -> str:
    found = cloud.kubectl("-n", namespace, "get", "spinapp", "hello", "-o", "json")
    assert found.returncode == 0, found.stderr
    return json.loads(found.stdout)["spec"]["image"]


def s3_keys(cloud: Cloud, prefix: str = "") -> list[str]:
    s3 = cloud.moto.client("s3", "eu-west-1")
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def ecr_repositories(cloud: Cloud) -> list[str]:
    ecr = cloud.moto.client("ecr", "eu-west-1")
    return sorted(r["repositoryName"] for r in ecr.describe_repositories()["repositories"])


def pull(cloud: Cloud, reference: str, what: str = "manifests") -> urllib3.BaseHTTPResponse:
    """GET an image's manifest (or, with ``what="blobs"``, a blob by ``repo@digest``) from the registry."""
    repository, _, digest = reference.partition("/")[2].partition("@")
    auth = urllib3.make_headers(basic_auth=f"AWS:{cloud.registry_password}")
    return urllib3.PoolManager().request("GET", f"{cloud.registry.url}/v2/{repository}/{what}/{digest}",
                                         headers={**auth, "Accept": OCI_ACCEPT})


def assert_pullable(cloud: Cloud, reference: str) -> None:
    """What a node does to run the image: its manifest, then every blob it names."""
    manifest = pull(cloud, reference)
    assert manifest.status == 200, reference
    name = reference.rpartition("@")[0]
    for blob in [json.loads(manifest.data)["config"], *json.loads(manifest.data)["layers"]]:
        assert pull(cloud, f"{name}@{blob['digest']}", "blobs").status == 200, blob


def gc(cloud: Cloud, project: Path, *args: str) -> dict:
    result = cloud.faasops(project, "gc", "--format", "json", *args)
    assert result.code == 0, result.output
    return json.loads(result.out)


@pytest.fixture
def fresh(cloud: Cloud) -> Cloud:  # noqa: F811
    cloud.moto.reset()
    cloud.kube.reset()
    return cloud


@pytest.mark.slow
def test_gc_keep_1_removes_the_oldest_source_and_image_and_rollback_still_works(fresh: Cloud, tmp_path: Path) -> None:
    project = make_project(fresh, tmp_path, "shop", "storefront")
    artifacts = apply_edits(fresh, project, EDITS)
    keys = s3_keys(fresh)
    assert len(keys) == 3 and all(k.startswith("sources/shop/") for k in keys)

    dry = gc(fresh, project, "--keep", "1", "--dry-run")
    assert dry["kinds"]["image"]["count"] == 1 and dry["kinds"]["source"]["count"] == 1
    assert s3_keys(fresh) == keys and pull(fresh, artifacts[0]).status == 200  # nothing removed

    freed = gc(fresh, project, "--keep", "1")
    assert freed["kinds"] == dry["kinds"]
    left = s3_keys(fresh)
    assert len(left) == 2 and set(left) < set(keys)
    (gone,) = set(keys) - set(left)
    assert freed["kinds"]["source"]["bytes"] > 0
    assert pull(fresh, artifacts[0]).status == 404
    assert_pullable(fresh, artifacts[1])
    assert_pullable(fresh, artifacts[2])
    assert gc(fresh, project, "--keep", "1")["bytes"] == 0
    # The shared build cache lies outside the project: gc says so and leaves it alone.
    assert any("build cache" in note for store in freed["stores"] for note in store["notes"])

    rolled = fresh.faasops(project, "rollback", "storefront/hello")
    assert rolled.code == 0, rolled.output
    assert live_image(fresh, "storefront") == artifacts[1]
    assert fresh.faasops(project, "rollback", "storefront/hello").code == 1  # the collected one is not offered


@pytest.mark.slow
def test_destroy_purge_removes_the_projects_repositories_and_sources(fresh: Cloud, tmp_path: Path) -> None:
    project = make_project(fresh, tmp_path, "shop", "storefront")
    artifacts = apply_edits(fresh, project, EDITS[:2])
    assert ecr_repositories(fresh) == ["faasops/shop/storefront/hello"]
    assert len(s3_keys(fresh)) == 2

    destroyed = fresh.faasops(project, "destroy", "--auto-approve", "--purge")
    assert destroyed.code == 0, destroyed.output
    assert ecr_repositories(fresh) == []
    assert s3_keys(fresh) == []
    assert all(pull(fresh, artifact).status == 404 for artifact in artifacts)
    assert fresh.kubectl("-n", "storefront", "get", "spinapp", "hello").returncode != 0


@pytest.mark.slow
def test_gc_and_purge_of_one_project_leave_another_sharing_table_bucket_and_registry_alone(
        fresh: Cloud, tmp_path: Path) -> None:
    shop = make_project(fresh, tmp_path, "shop", "storefront")
    mall = make_project(fresh, tmp_path, "mall", "mallfront")
    # The same sources in both: equal digests, so only the project's folder and repository tell them apart.
    shop_artifacts = apply_edits(fresh, shop, EDITS[:2])
    mall_artifacts = apply_edits(fresh, mall, EDITS[:2])
    mall_keys = s3_keys(fresh, "sources/mall/")
    assert len(mall_keys) == 2
    # A source written before keys carried the project: nobody's for sure, never collected.
    fresh.moto.client("s3", "eu-west-1").put_object(Bucket=BUCKET, Key=f"sources/{'0' * 64}.tar.gz", Body=b"old")

    assert gc(fresh, shop, "--keep", "0")["kinds"]["image"]["count"] == 1
    assert fresh.faasops(shop, "destroy", "--auto-approve", "--purge").code == 0
    assert pull(fresh, shop_artifacts[-1]).status == 404

    assert s3_keys(fresh, "sources/mall/") == mall_keys
    assert f"sources/{'0' * 64}.tar.gz" in s3_keys(fresh)
    assert ecr_repositories(fresh) == ["faasops/mall/mallfront/hello"]
    for artifact in mall_artifacts:
        assert_pullable(fresh, artifact)
    planned = fresh.faasops(mall, "plan", "--detailed-exitcode")
    assert planned.code == 0, planned.output
    assert live_image(fresh, "mallfront") == mall_artifacts[1]
    assert fresh.faasops(mall, "rollback", "mallfront/hello").code == 0
    assert live_image(fresh, "mallfront") == mall_artifacts[0]
