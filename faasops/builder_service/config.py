"""The Builder service's own configuration file (YAML), e.g. ``examples/builder/builder.yaml``::

    apiVersion: faasops/builder/v1
    project: faasops-builder          # scope of this service's tasks in the state backend
    data_dir: /var/lib/faasops-builder
    auth: {token_env: FAASOPS_BUILDER_TOKEN}
    limits: {max_upload_bytes: 33554432}
    workers: 2
    providers:
      state: {type: dynamodb, table: faasops-builder, region: eu-west-1}
      registry: {type: ecr, region: eu-west-1}
      deployer: {type: kubernetes}

``providers`` takes the same slots, types and options as ``providers:`` in faas.yaml and is served
by the same plugins. ``state`` is required; ``builder`` defaults to ``componentize-py`` and
``scaffolder`` to ``spinkube``; without ``registry`` the push endpoints, without ``deployer`` the
deploy endpoint, answer 501; ``sources`` (optional) keeps every accepted upload. Relative paths —
``data_dir`` against the config file's directory, provider paths against ``data_dir`` (the
synthetic project root the providers see).

The bearer token is read from the environment variable ``auth.token_env`` names, never from the
file. ``plugins`` lists extra plugin modules to register besides the installed entry points (a
site's own builder, or a test's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from faasops.errors import FaasopsError
from faasops.model import Project, ProviderConfig, Workspace
from faasops.source import MAX_SOURCE_BYTES
from faasops.source_archive import (
    DEFAULT_MAX_COMPRESSION_RATIO,
    DEFAULT_MAX_FILES,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_NAME_BYTES,
    MAX_TOTAL_HEADER_BYTES,
    ArchiveLimits,
)

CONFIG_API_VERSION = "faasops/builder/v1"
DEFAULT_TOKEN_ENV = "FAASOPS_BUILDER_TOKEN"
DEFAULT_MAX_UPLOAD_BYTES = 32 << 20
DEFAULT_SLOTS = {"builder": "componentize-py", "scaffolder": "spinkube"}
SERVICE_SLOTS = ("state", "sources", "builder", "registry", "scaffolder", "deployer")
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class ConfigError(FaasopsError):
    """The Builder service's config file is missing or invalid."""


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token_env: str = Field(DEFAULT_TOKEN_ENV, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                           description="Environment variable holding the bearer token clients send.")

    @model_validator(mode="before")
    @classmethod
    def _no_literal_token(cls, data: Any) -> Any:
        if isinstance(data, dict) and {"token", "password", "secret"} & set(data):
            raise ValueError("never write the token into the config file: name the environment variable "
                             "that holds it in `token_env`")
        return data


class LimitsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_upload_bytes: int = Field(DEFAULT_MAX_UPLOAD_BYTES, ge=1024,
                                  description="Largest request body an upload endpoint reads (HTTP 413 above).")
    max_source_bytes: int = Field(MAX_SOURCE_BYTES, ge=1024,
                                  description="Largest total size of the files in an upload, uncompressed.")
    max_files: int = Field(DEFAULT_MAX_FILES, ge=1, description="Most entries an uploaded archive may hold.")
    max_header_bytes: int = Field(DEFAULT_MAX_HEADER_BYTES, ge=1024, le=MAX_TOTAL_HEADER_BYTES,
                                  description="Largest PAX or GNU extended header (long names) in an upload.")
    max_name_bytes: int = Field(DEFAULT_MAX_NAME_BYTES, ge=64, le=4096,
                                description="Longest member name in an upload (UTF-8 bytes).")
    max_compression_ratio: int = Field(DEFAULT_MAX_COMPRESSION_RATIO, ge=10,
                                       description="Most an upload may expand (decompressed : compressed bytes).")

    def archive_limits(self) -> ArchiveLimits:
        """What an uploaded archive may hold."""
        return ArchiveLimits(self.max_source_bytes, self.max_files, self.max_header_bytes, self.max_name_bytes,
                             self.max_compression_ratio)


class SlotConfig(BaseModel):
    """One provider slot: its plugin ``type`` and the plugin's options (every other key)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1)

    def provider_config(self, slot: str) -> ProviderConfig:
        return ProviderConfig(slot, self.type, dict(self.model_extra or {}))


class ServiceConfig(BaseModel):
    """The whole config file, validated; see the module docstring."""

    model_config = ConfigDict(extra="forbid")

    api_version: Literal["faasops/builder/v1"] = Field(CONFIG_API_VERSION, alias="apiVersion")
    project: str = Field("faasops-builder", pattern=_DNS_LABEL, max_length=63)
    data_dir: Path = Path("/var/lib/faasops-builder")
    auth: AuthConfig = AuthConfig()
    limits: LimitsConfig = LimitsConfig()
    workers: int = Field(2, ge=1, le=64, description="Threads running build, push and deploy tasks.")
    task_log_chars: int = Field(4000, ge=200, description="Longest log excerpt kept in a failed task.")
    plugins: list[str] = Field(default_factory=list, description="Extra plugin modules to register.")
    providers: dict[str, SlotConfig]

    @field_validator("providers")
    @classmethod
    def _known_slots(cls, providers: dict[str, SlotConfig]) -> dict[str, SlotConfig]:
        unknown = sorted(set(providers) - set(SERVICE_SLOTS))
        if unknown:
            raise ValueError(f"unknown provider slot(s) {', '.join(unknown)} (known: {', '.join(SERVICE_SLOTS)})")
        if "state" not in providers:
            raise ValueError("`state` is required: the service records its tasks there")
        return providers

    def provider_configs(self) -> dict[str, ProviderConfig]:
        configs = {slot: ProviderConfig(slot, type_, {}) for slot, type_ in DEFAULT_SLOTS.items()}
        configs.update({slot: entry.provider_config(slot) for slot, entry in self.providers.items()})
        return configs

    def project_for(self, name: str | None = None, workspaces: tuple[Workspace, ...] = ()) -> Project:
        """The synthetic project the providers see: the service's providers rooted at
        ``data_dir``, named after the requesting project (registry repositories carry it) and
        holding just the workspace a request is about."""
        return Project(name=name or self.project, root=self.data_dir, providers=self.provider_configs(),
                       workspaces=workspaces)


def load_config(path: Path) -> ServiceConfig:
    """Read and validate the config file; every problem is reported as ``FILE: where: message``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: the builder config file does not exist") from exc
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the builder config: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the builder config must be a mapping (see examples/builder/builder.yaml)")
    try:
        config = ServiceConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in error['loc']) or '(top level)'}: {error['msg']}"
                 for error in exc.errors()]
        raise ConfigError("\n".join(lines)) from exc
    data_dir = config.data_dir if config.data_dir.is_absolute() else path.parent.resolve() / config.data_dir
    return config.model_copy(update={"data_dir": data_dir})
