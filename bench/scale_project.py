"""Generated projects for the scale benchmark: N functions over W workspaces, one shared source.

Layout (the documented "large repository" form: one ``faas.yaml`` per workspace)::

    faas.yaml                          project, providers (pointed at the benchmark's services)
    shared/hello/app.py                the one handler every function runs
    workspaces/ws-000/faas.yaml        functions fn-00000 … with ``source: ../../shared/hello``
    …

Every function's source is the same directory, so every function has the same source digest and
one componentize-py build serves them all through the builder's content-hash cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
# The cloud example's hello handler: byte-identical, so its build is shared with the test suite's
# build cache when FAASOPS_BUILD_CACHE points there.
HELLO_SOURCE = ROOT / "examples" / "cloud" / "functions" / "hello" / "app.py"
CHANGED_ENV = {"BENCH_CHANGED": "1"}


@dataclass(frozen=True)
class Endpoints:
    """Where the generated project's providers talk to."""

    moto_url: str
    registry_url: str
    kubeconfig: Path
    build_cache: Path


@dataclass(frozen=True)
class Shape:
    """N functions spread evenly over W workspaces."""

    functions: int
    workspaces: int
    # Tells apart projects of the same size measured in one run (at another latency): their
    # registry repositories differ, so nothing one pushed is found by the other.
    variant: str = ""

    @property
    def project(self) -> str:
        return f"bench-n{self.functions}-w{self.workspaces}" + (f"-{self.variant}" if self.variant else "")

    def workspace_names(self) -> list[str]:
        return [f"ws-{i:03d}" for i in range(self.workspaces)]

    def functions_of(self, workspace_index: int) -> list[str]:
        """Function names of workspace ``workspace_index`` (round-robin, so sizes differ by ≤ 1)."""
        return [f"fn-{i:05d}" for i in range(workspace_index, self.functions, self.workspaces)]


def default_workspaces(functions: int) -> int:
    """10 workspaces up to 1,000 functions, then one per 100 functions, at most 100."""
    return max(10, min(100, functions // 100))


def generate(root: Path, shape: Shape, endpoints: Endpoints) -> Path:
    """Write the project for ``shape`` under ``root`` (created) and return ``root``."""
    (root / "shared" / "hello").mkdir(parents=True, exist_ok=True)
    (root / "shared" / "hello" / "app.py").write_bytes(HELLO_SOURCE.read_bytes())
    _dump(root / "faas.yaml", {
        "apiVersion": "faasops/v1",
        "project": shape.project,
        "backend": "aws",
        "providers": {
            "state": {"type": "dynamodb", "table": "faasops-bench", "region": "eu-west-1",
                      "endpoint_url": endpoints.moto_url, "create_table": True},
            "sources": {"type": "s3", "bucket": "faasops-bench-sources", "region": "eu-west-1",
                        "endpoint_url": endpoints.moto_url, "create_bucket": True},
            "builder": {"type": "componentize-py", "cache_dir": str(endpoints.build_cache)},
            "registry": {"type": "ecr", "region": "eu-west-1", "endpoint_url": endpoints.moto_url,
                         "registry_url": endpoints.registry_url},
            "deployer": {"type": "kubernetes", "kubeconfig": str(endpoints.kubeconfig), "wait": False},
        },
        "defaults": {"resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                   "limits": {"cpu": "500m", "memory": "256Mi"}}},
    })
    for index, workspace in enumerate(shape.workspace_names()):
        directory = root / "workspaces" / workspace
        directory.mkdir(parents=True, exist_ok=True)
        _dump(directory / "faas.yaml", {"workspaces": [{
            "name": workspace,
            "labels": {"team": f"team-{index % 7}"},
            "functions": [{"name": name, "source": "../../shared/hello"} for name in shape.functions_of(index)],
        }]})
    return root


def change_one_function(root: Path, shape: Shape) -> str:
    """Give the first function of the first workspace an extra ``env`` entry (a new artifact and
    a redeploy, not a rebuild: ``env`` is baked into the Spin artifact, not the component).
    Returns its address."""
    workspace = shape.workspace_names()[0]
    path = root / "workspaces" / workspace / "faas.yaml"
    document = yaml.safe_load(path.read_text())
    function = document["workspaces"][0]["functions"][0]
    function["env"] = dict(CHANGED_ENV)
    _dump(path, document)
    return f"{workspace}/{function['name']}"


CHANGES = ("resources", "env")


def change_all_functions(root: Path, shape: Shape, change: str, round_: int = 1) -> None:
    """Change every function at once (``round_`` makes each call a new change):

    * ``resources``: the project's default memory limit (new manifests, same artifact: a
      redeploy with a cached build and nothing to push);
    * ``env``: an ``env`` entry on every function (a new artifact each: a push of its new
      locked-app and config blobs and manifest, with the cached component).
    """
    if change == "resources":
        path = root / "faas.yaml"
        document = yaml.safe_load(path.read_text())
        document["defaults"]["resources"]["limits"]["memory"] = f"{256 + 64 * round_}Mi"
        _dump(path, document)
        return
    if change != "env":
        raise ValueError(f"unknown change {change!r} (one of {', '.join(CHANGES)})")
    for workspace in shape.workspace_names():
        path = root / "workspaces" / workspace / "faas.yaml"
        document = yaml.safe_load(path.read_text())
        for function in document["workspaces"][0]["functions"]:
            function["env"] = {"BENCH_ROUND": str(round_)}
        _dump(path, document)


def _dump(path: Path, document: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=120))
