"""User-facing errors.

Anything derived from :class:`FaasopsError` is the user's to fix (or the environment's): the CLI
prints its message on one line per problem and exits 1, without a traceback. Any other exception
is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class FaasopsError(Exception):
    """Base class of every error a user can act on."""


@dataclass(frozen=True)
class Problem:
    """One located problem in a manifest or source file.

    ``file`` is relative to the project root where possible; ``line``/``col`` are 1-based and 0
    when unknown; ``path`` is the manifest path of the offending value, e.g.
    ``workspaces[0].functions[1].name``.
    """

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}:{self.col}"
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ManifestError(FaasopsError):
    """The manifests are invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.col, p.path))
        super().__init__("\n".join(str(p) for p in self.problems))


class ProviderError(FaasopsError):
    """A provider failed in a way the user can act on (unreachable service, bad credentials…)."""


class PluginError(FaasopsError):
    """A plugin is missing, misconfigured or does not honour the hook contract."""


class PolicyViolation(FaasopsError):
    """A plan check hook vetoed the plan."""

    def __init__(self, violations: list[str]):
        self.violations = violations
        super().__init__("plan rejected by policy:\n" + "\n".join(f"  - {v}" for v in violations))


class LockError(FaasopsError):
    """The state is locked by another run (or the lock could not be taken)."""


class StalePlanError(FaasopsError):
    """A saved plan no longer matches the state or the sources it was made from."""


class ApplyError(FaasopsError):
    """Apply finished with failed steps; the state records exactly what succeeded."""


class Aborted(FaasopsError):
    """The user declined the confirmation prompt."""


class RequestRefused(FaasopsError):
    """A request to one of faasops' HTTP services refused; ``status`` is the HTTP status to
    answer with, the message the ``detail``."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)
