"""Checking provider options from faas.yaml: one wording for every plugin's messages."""

from __future__ import annotations

from typing import Any

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
