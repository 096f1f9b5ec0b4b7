"""The built-in providers implement their slot's protocol and the optional capabilities the core
looks for with isinstance (faasops.providers.Supports*): renaming a capability's method would
otherwise silently switch it off (slower plans, no commit in the task message)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from faasops.plugins.aws import DynamoDBState, S3SourceStore
from faasops.plugins.componentize import ComponentizePyBuilder
from faasops.plugins.ecr import DistributionRegistry, EcrRegistry
from faasops.plugins.gitops import GitOpsDeployer
from faasops.plugins.kubernetes import KubernetesDeployer
from faasops.plugins.local import LocalDeployer, LocalRegistry, LocalSourceStore, LocalState
from faasops.plugins.spinkube import SpinKubeScaffolder

from faasops.conformance.fakes import FakeScaffolder, MemoryDeployer, MemoryState
from faasops.providers import (
    Builder,
    Deployer,
    Registry,
    Scaffolder,
    SourceStore,
    StateBackend,
    StoredArtifacts,
    SupportsBuildCache,
    SupportsClose,
    SupportsDeployNote,
    SupportsRecordedState,
    SupportsRenderDigest,
    SupportsSerial,
    SupportsSnapshot,
    SupportsTaskBatches,
)

# (class, the protocols its instances must implement, the capabilities they must not claim)
EXPECTED = [
    (LocalState, {StateBackend, SupportsSerial}, {SupportsSnapshot, StoredArtifacts, SupportsTaskBatches}),
    (DynamoDBState, {StateBackend, SupportsSerial, SupportsSnapshot, SupportsTaskBatches}, set()),
    (MemoryState, {StateBackend, SupportsSerial}, {SupportsSnapshot, StoredArtifacts, SupportsTaskBatches}),
    (LocalSourceStore, {SourceStore, StoredArtifacts}, set()),
    (S3SourceStore, {SourceStore, SupportsClose, StoredArtifacts}, set()),
    (ComponentizePyBuilder, {Builder, SupportsBuildCache, StoredArtifacts}, set()),
    (LocalRegistry, {Registry, StoredArtifacts}, {SupportsClose, SupportsRecordedState}),
    (DistributionRegistry, {Registry, SupportsClose, StoredArtifacts, SupportsRecordedState}, set()),
    (EcrRegistry, {Registry, SupportsClose, StoredArtifacts, SupportsRecordedState}, set()),
    (SpinKubeScaffolder, {Scaffolder, SupportsRenderDigest}, set()),
    (FakeScaffolder, {Scaffolder, SupportsRenderDigest}, set()),
    (LocalDeployer, {Deployer}, {SupportsDeployNote, StoredArtifacts}),
    (KubernetesDeployer, {Deployer}, {SupportsDeployNote}),
    (GitOpsDeployer, {Deployer, SupportsDeployNote}, set()),
    (MemoryDeployer, {Deployer}, {SupportsDeployNote}),
]


def has(cls: type, protocol: type) -> bool:
    """What ``isinstance(provider, protocol)`` answers for instances of ``cls``: the protocol's
    members are all there (methods on the class; data members such as ``toolchain`` and
    ``cache_dir`` are set by the constructor, so they are looked for in its code)."""
    methods = [name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")]
    data = list(vars(protocol).get("__annotations__", {}))
    constructor = inspect.getsource(cls)
    return all(callable(getattr(cls, m, None)) for m in methods) and all(
        f"self.{m} =" in constructor or m in vars(cls) for m in data
    )


@pytest.mark.parametrize(("cls", "protocols", "absent"), EXPECTED, ids=[c.__name__ for c, _, _ in EXPECTED])
def test_a_provider_offers_its_protocols_and_claims_no_other_capability(
    cls: type, protocols: set[type], absent: set[type]
) -> None:
    for protocol in protocols:
        assert has(cls, protocol), f"{cls.__name__} does not implement {protocol.__name__}"
    for protocol in absent:
        assert not has(cls, protocol), f"{cls.__name__} now implements {protocol.__name__}: add it to EXPECTED"


def test_isinstance_finds_the_capabilities_of_instances(tmp_path: Path) -> None:
    state = LocalState(tmp_path / "state.db")
    assert isinstance(state, StateBackend) and isinstance(state, SupportsSerial)
    assert not isinstance(state, SupportsSnapshot)
    assert isinstance(SpinKubeScaffolder(), SupportsRenderDigest)
    builder = ComponentizePyBuilder(tmp_path / "cache")
    assert isinstance(builder, Builder) and isinstance(builder, SupportsBuildCache)
    assert not isinstance(LocalDeployer(tmp_path / "deploy"), SupportsDeployNote)
