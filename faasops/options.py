"""Checking provider options from faas.yaml: one wording for every plugin's messages."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from faasops.errors import ProviderError


def positive_seconds(value: Any, option: str) -> float:
    """``value`` as a positive number of seconds, or a ProviderError naming ``option``
    (e.g. ``providers.deployer.wait_timeout``)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds <= 0 or isinstance(value, bool):
        raise ProviderError(f"{option} must be a positive number of seconds, not {value!r}")
    return seconds


def check_known(options: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    """A ProviderError naming every option of ``where`` (e.g. ``providers.deployer (type
    gitops)``) that is not in ``known``: a misspelt option must not be silently ignored."""
    unknown = sorted(set(options) - {"type", *known})
    if unknown:
        raise ProviderError(f"{where}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


def text(value: Any, option: str, *, required: bool = False) -> str | None:
    """``value`` as a non-empty string (None when absent and not ``required``), or a
    ProviderError naming ``option``."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ProviderError(f"{option} must be a non-empty string, not {value!r}")
    return value
