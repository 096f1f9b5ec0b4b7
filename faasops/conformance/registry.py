"""The behavioural tests of :class:`faasops.providers.Registry`."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from faasops.conformance.samples import sample_build, two_function_project
from faasops.model import Project
from faasops.providers import Registry

CREATED = "2026-01-01T00:00:00Z"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class RegistryContract:
    """Subclass it as ``Test…`` and define the fixture ``registry``, a registry for the
    ``conformance_project`` fixture (functions ``demo/hello`` and ``demo/bye``), empty for each test::

        class TestMyRegistry(RegistryContract):
            @pytest.fixture
            def registry_provider(self, conformance_project):
                return MyRegistry(conformance_project, url=...)

    The components pushed are small fake ones (a registry stores them without running them).
    """

    @pytest.fixture
    def registry_provider(self, conformance_project: Project) -> Registry:
        raise NotImplementedError("define the fixture registry_provider in your RegistryContract subclass")

    @pytest.fixture
    def conformance_project(self, tmp_path: Path) -> Project:
        return two_function_project(tmp_path)

    @pytest.fixture
    def conformance_builds(self, tmp_path: Path) -> Path:
        return tmp_path / "conformance_builds"

    def test_a_push_returns_a_reference_by_digest(
        self, registry_provider: Registry, conformance_project: Project, conformance_builds: Path
    ) -> None:
        hello = conformance_project.functions()[0]
        artifact = registry_provider.push(hello, sample_build(conformance_builds, hello), CREATED)
        assert DIGEST.match(artifact.digest), artifact.digest
        repository, _, digest = artifact.reference.partition("@")
        assert repository and digest == artifact.digest
        assert artifact.pushed is True

    def test_pushing_the_same_component_again_is_idempotent(
        self, registry_provider: Registry, conformance_project: Project, conformance_builds: Path
    ) -> None:
        hello = conformance_project.functions()[0]
        build = sample_build(conformance_builds, hello)
        first = registry_provider.push(hello, build, CREATED)
        again = registry_provider.push(hello, build, CREATED)
        assert (again.reference, again.digest) == (first.reference, first.digest)
        assert again.pushed is False

    def test_equal_inputs_give_equal_digests_and_other_inputs_others(
        self, registry_provider: Registry, conformance_project: Project, conformance_builds: Path
    ) -> None:
        hello = conformance_project.functions()[0]
        first = registry_provider.push(hello, sample_build(conformance_builds, hello, b"one"), CREATED)
        other_component = registry_provider.push(hello, sample_build(conformance_builds, hello, b"two"), CREATED)
        other_time = registry_provider.push(
            hello, sample_build(conformance_builds, hello, b"one"), "2026-02-02T00:00:00Z"
        )
        assert len({first.digest, other_component.digest, other_time.digest}) == 3
        assert (
            registry_provider.push(hello, sample_build(conformance_builds, hello, b"one"), CREATED).digest
            == first.digest
        )

    def test_functions_pushed_at_once_get_their_own_artifacts(
        self, registry_provider: Registry, conformance_project: Project, conformance_builds: Path
    ) -> None:
        functions = conformance_project.functions()
        pushes = [(fn, sample_build(conformance_builds, fn)) for fn in functions for _ in range(2)]
        with ThreadPoolExecutor(4) as pool:
            artifacts = list(pool.map(lambda p: registry_provider.push(p[0], p[1], CREATED), pushes))
        by_function = {
            fn.address: {a.reference for (f, _), a in zip(pushes, artifacts, strict=True) if f is fn}
            for fn in functions
        }
        assert all(len(refs) == 1 for refs in by_function.values()), by_function
        assert len({ref for refs in by_function.values() for ref in refs}) == len(functions)
