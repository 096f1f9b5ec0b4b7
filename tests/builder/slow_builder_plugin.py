"""A builder plugin for the service under test whose builds never finish in time: registered by
the service's `plugins:` config, selected with `providers.builder.type: slow`. It reports the
real toolchain, so clients compute the same build keys as for componentize-py."""

from __future__ import annotations

import threading

from faasops.plugins.componentize import ComponentizePyBuilder, toolchain_version

from faasops.hookspecs import hookimpl
from faasops.model import Function, Project, ProviderConfig
from faasops.providers import BuildResult, SourceSnapshot

BUILD_SECONDS = 120.0


class SlowBuilder:
    def __init__(self) -> None:
        self.toolchain = toolchain_version()

    build_key = ComponentizePyBuilder.build_key

    def build(self, function: Function, snapshot: SourceSnapshot) -> BuildResult:
        threading.Event().wait(BUILD_SECONDS)  # a hung toolchain
        raise RuntimeError("the slow builder never builds anything")


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [("builder", "slow", "test builder that hangs")]


@hookimpl
def faasops_builder(config: ProviderConfig, project: Project) -> SlowBuilder | None:
    return SlowBuilder() if config.type == "slow" else None
