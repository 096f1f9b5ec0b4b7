"""What the Builder API does, without HTTP: build, push, render and deploy through the same
provider plugins ``faasops apply`` uses, as tasks.

The providers are created from the service config (:mod:`faasops.builder_service.config`) for a
synthetic project rooted at ``data_dir``. A registry provider names repositories after the project
(``<prefix><project>/<workspace>/<function>``), so one is kept per requesting project name; the
scaffolder and deployer receive a project holding just the request's workspace.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import pluggy

from faasops import __version__
from faasops.builder_service.build_cache import cached_build
from faasops.builder_service.config import ServiceConfig
from faasops.builder_service.tasks import TaskRunner
from faasops.builder_service.uploads import (
    UploadLimits,
    UploadRejected,
    validate_upload,
)
from faasops.builder_service.wire import (
    API_VERSION,
    KIND_BUILD,
    KIND_BUILD_AND_PUSH,
    KIND_DEPLOY,
    KIND_PUSH,
    function_from_wire,
    workspace_from_wire,
)
from faasops.errors import FaasopsError, PluginError
from faasops.file_mounts import FileMountError, resolve_file_mounts
from faasops.executor import EPOCH
from faasops.model import Function, Project
from faasops.plugin_manager import create_plugin_manager, create_provider
from faasops.providers import Artifact, BuildResult, Registry, SupportsBuildCache, SupportsClose, Task

_BUILD_KEY = re.compile(r"sha256:[0-9a-f]{64}")


class NotConfigured(FaasopsError):
    """The service has no provider for what a request needs (HTTP 501)."""


class NotFound(FaasopsError):
    """What a request names does not exist here (HTTP 404)."""


@dataclass(frozen=True)
class UploadedBuild:
    """A validated ``POST /build`` or ``/build-and-push`` request."""

    project: str
    function: dict[str, Any]
    archive: bytes
    source_digest: str | None
    created: str | None


def load_plugins(names: list[str]) -> tuple[Any, ...]:
    try:
        return tuple(import_module(name) for name in names)
    except ImportError as exc:
        raise PluginError(f"builder config `plugins`: cannot import {exc.name!r}: {exc}") from exc


class BuilderService:
    """The providers, the task runner and one method per endpoint. Thread-safe."""

    def __init__(self, config: ServiceConfig, pm: pluggy.PluginManager | None = None):
        self.config = config
        self.pm = pm or create_plugin_manager(load_plugins(config.plugins))
        self.project = config.project_for()
        self.limits = UploadLimits(config.limits.max_upload_bytes, config.limits.archive_limits())
        self.state = create_provider(self.pm, self.project, "state")
        self.builder = create_provider(self.pm, self.project, "builder")
        self.scaffolder = create_provider(self.pm, self.project, "scaffolder")
        self.sources = self._optional("sources")
        self.deployer = self._optional("deployer")
        self._registries: dict[str, Registry] = {}
        self._lock = threading.Lock()
        if "registry" in config.providers:
            self._registry(config.project)  # a misconfigured registry fails at start, not per request
        self.runner = TaskRunner(self.state, config.workers, config.task_log_chars)

    def _optional(self, slot: str) -> Any:
        return create_provider(self.pm, self.project, slot) if slot in self.config.providers else None

    def _registry(self, project: str) -> Registry:
        if "registry" not in self.config.providers:
            raise NotConfigured("this builder has no registry configured (providers.registry in its config)")
        with self._lock:
            if project not in self._registries:
                self._registries[project] = create_provider(self.pm, self.config.project_for(project), "registry")
            return self._registries[project]

    def _deployer(self) -> Any:
        if self.deployer is None:
            raise NotConfigured("this builder has no deployer configured (providers.deployer in its config)")
        return self.deployer

    # ------------------------------------------------------------------------- info

    def info(self) -> dict[str, Any]:
        providers = self.project.providers
        return {
            "api_version": API_VERSION,
            "faasops_version": __version__,
            "toolchain": self.builder.toolchain,
            "builder": providers["builder"].type,
            "registry": providers["registry"].type if "registry" in providers else None,
            "deployer": providers["deployer"].type if "deployer" in providers else None,
            "max_upload_bytes": self.limits.max_upload_bytes,
        }

    # ------------------------------------------------------------------------- build and push

    def submit_build(self, upload: UploadedBuild, push: bool) -> Task:
        """Validate the upload (nothing is stored when it is refused), then queue its build —
        and with ``push`` its push through the configured registry."""
        registry = self._registry(upload.project) if push else None
        # The extracted upload stays until its task is done: the push reads the function's
        # `files` from it (they become layers of the artifact).
        scratch = Path(tempfile.mkdtemp(prefix="faasops-upload-"))
        try:
            snapshot = validate_upload(upload.archive, upload.function["handler"], scratch, self.limits,
                                       tuple(upload.function.get("dependencies") or ()))
            if upload.source_digest and upload.source_digest != snapshot.digest:
                raise UploadRejected(422, f"the uploaded source has digest {snapshot.digest}, "
                                          f"not {upload.source_digest} as the request says")
            function = function_from_wire(upload.function, scratch)
            try:
                resolve_file_mounts(scratch, function.files)
            except FileMountError as exc:
                raise UploadRejected(422, f"files: {exc}") from None
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        created = upload.created or EPOCH

        def work() -> dict[str, Any]:
            try:
                if self.sources is not None:
                    self.sources.upload(function, snapshot)
                build = self.builder.build(function, snapshot)
                result = self._build_result(build)
                if registry is not None:
                    result["artifact"] = _artifact(registry.push(function, build, created))
                return result
            finally:
                shutil.rmtree(scratch, ignore_errors=True)

        try:
            return self.runner.submit(function.workspace, function.name, KIND_BUILD_AND_PUSH if push else KIND_BUILD, work)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise

    def submit_push(self, project: str, function_data: dict[str, Any], build_key: str, created: str | None) -> Task:
        """Queue the push of an earlier build of this builder, found by its key."""
        registry = self._registry(project)
        build = self.find_build(build_key)
        function = function_from_wire(function_data, self.project.root)
        if function.files:
            raise UploadRejected(422, "a function with files needs its source to be pushed (its files become "
                                      "layers of the artifact): use POST /api/v1/build-and-push")
        return self.runner.submit(
            function.workspace, function.name, KIND_PUSH,
            lambda: {"build_key": build.build_key, "wasm_digest": build.wasm_digest,
                     "artifact": _artifact(registry.push(function, build, created or EPOCH))},
        )

    def find_build(self, build_key: str) -> BuildResult:
        """An earlier build by key, from the builder's cache (the componentize-py layout of
        :mod:`faasops.builder_service.build_cache`)."""
        if not _BUILD_KEY.fullmatch(build_key):
            raise NotFound(f"{build_key!r} is not a build key (sha256:<64 hex digits>)")
        cache_dir = self.builder.cache_dir if isinstance(self.builder, SupportsBuildCache) else None
        found = cached_build(Path(cache_dir), build_key) if cache_dir is not None else None
        if found is None:
            raise NotFound(f"this builder has no build {build_key}; build it first (POST /api/v1/build)")
        return found

    def _build_result(self, build: BuildResult) -> dict[str, Any]:
        return {"build_key": build.build_key, "wasm_digest": build.wasm_digest, "cached": build.cached,
                "toolchain": self.builder.toolchain}

    # ------------------------------------------------------------------------- scaffold and deploy

    def _target(self, project: str, workspace: dict[str, Any], function_data: dict[str, Any]) -> tuple[Project, Function]:
        if function_data["workspace"] != workspace["name"]:
            raise UploadRejected(422, f"function.workspace {function_data['workspace']!r} is not "
                                      f"workspace.name {workspace['name']!r}")
        function = function_from_wire(function_data, self.project.root)
        return self.config.project_for(project, (workspace_from_wire(workspace, (function,)),)), function

    def scaffold(self, project: str, workspace: dict[str, Any], function_data: dict[str, Any], image: str) -> list[dict[str, Any]]:
        """The manifests the scaffolder renders for the function running ``image`` (pure)."""
        target, function = self._target(project, workspace, function_data)
        return self.scaffolder.render(target, function, image)

    def submit_deploy(self, project: str, workspace: dict[str, Any], function_data: dict[str, Any], image: str) -> Task:
        """Queue: create the namespace when missing, render, apply."""
        deployer = self._deployer()
        target, function = self._target(project, workspace, function_data)
        declared = target.workspaces[0]
        manifests = self.scaffolder.render(target, function, image)  # render errors answer 422 now

        def work() -> dict[str, Any]:
            deployer.ensure_workspace(target, declared)
            deployer.deploy(target, function, manifests)
            return {"namespace": declared.spec()["namespace"],
                    "manifests": [f"{m['kind']}/{m['metadata']['name']}" for m in manifests]}

        return self.runner.submit(function.workspace, function.name, KIND_DEPLOY, work)

    # ------------------------------------------------------------------------- tasks

    def task(self, task_id: str) -> Task:
        found = [t for t in self.state.list_tasks(task_id=task_id, limit=5) if t.id == task_id]
        if not found:
            raise NotFound(f"no task {task_id}")
        return found[0]

    def workspace_tasks(self, workspace: str, limit: int) -> list[Task]:
        return self.state.list_tasks(workspace=workspace, limit=limit)

    def close(self) -> None:
        self.runner.close()
        for registry in self._registries.values():
            if isinstance(registry, SupportsClose):
                registry.close()
        self.state.close()


def _artifact(artifact: Artifact) -> dict[str, Any]:
    return {"reference": artifact.reference, "digest": artifact.digest, "pushed": artifact.pushed}
