"""The provider conformance kit: the behavioural tests of the provider contract
(:mod:`faasops.providers`), for a plugin author to run against their provider, and in-memory
providers for testing code that uses providers.

Like pytest's ``pytester``, it ships in the package and needs pytest (only the test classes
import it). A plugin's test module subclasses the contract of its slot and defines one fixture
that builds the provider::

    import pytest
    from faasops.conformance import StateBackendContract

    class TestMyState(StateBackendContract):
        @pytest.fixture
        def state_factory(self, tmp_path):
            return lambda lease_s: MyState(tmp_path / "state", lease_s=lease_s)

===================================  =====================================================
contract                              fixture to define
===================================  =====================================================
:class:`StateBackendContract`         ``state_factory(lease_s) -> StateBackend`` (a new
                                      client of one store per call)
:class:`SourceStoreContract`          ``source_store``; optionally ``read_source(uri)``
:class:`RegistryContract`             ``registry_provider`` (may use the
                                      ``conformance_project`` fixture)
:class:`DeployerContract`             ``deployer`` (may use ``conformance_project``);
                                      optionally ``conformance_render``
===================================  =====================================================

The in-memory providers are in :mod:`faasops.conformance.fakes`, sample projects and values in
:mod:`faasops.conformance.samples`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["DeployerContract", "RegistryContract", "SourceStoreContract", "StateBackendContract"]

_CONTRACTS = {
    "StateBackendContract": "faasops.conformance.state",
    "SourceStoreContract": "faasops.conformance.sources",
    "RegistryContract": "faasops.conformance.registry",
    "DeployerContract": "faasops.conformance.deployer",
}

if TYPE_CHECKING:
    from faasops.conformance.deployer import DeployerContract
    from faasops.conformance.registry import RegistryContract
    from faasops.conformance.sources import SourceStoreContract
    from faasops.conformance.state import StateBackendContract


def __getattr__(name: str) -> Any:
    # The contracts import pytest: only when asked for, so the fakes work without it.
    if name in _CONTRACTS:
        import importlib

        return getattr(importlib.import_module(_CONTRACTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
