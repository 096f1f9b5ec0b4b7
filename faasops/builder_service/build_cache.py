"""The componentize-py builder's cache layout, read and written by build key.

``<cache_dir>/<key hex>.wasm`` plus the JSON sidecar ``<key hex>.json`` (build key, wasm digest,
size …); only a sidecar whose key and size match makes an entry valid (see
:mod:`faasops.plugins.componentize`). The Builder service finds earlier builds here (push by key,
component downloads) and the remote builder stores downloaded components here, so a later
local build of the same key reuses them.
"""

from __future__ import annotations

import json
from pathlib import Path

from faasops.oci import write_atomic
from faasops.providers import BuildResult


def entry_paths(cache_dir: Path, build_key: str) -> tuple[Path, Path]:
    """``(wasm, sidecar)`` of ``build_key`` in ``cache_dir``."""
    hex_key = build_key.removeprefix("sha256:")
    return cache_dir / f"{hex_key}.wasm", cache_dir / f"{hex_key}.json"


def cached_build(cache_dir: Path, build_key: str) -> BuildResult | None:
    """The valid cache entry of ``build_key``, else None."""
    wasm, sidecar = entry_paths(cache_dir, build_key)
    try:
        meta = json.loads(sidecar.read_text())
        size = wasm.stat().st_size
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("build_key") != build_key or meta.get("size") != size:
        return None
    return BuildResult(build_key=build_key, wasm_path=wasm, wasm_digest=meta["wasm_digest"], cached=True)


def write_sidecar(cache_dir: Path, build_key: str, wasm_digest: str, handler: str, source_digest: str,
                  toolchain: str) -> None:
    """Make the (already written) component of ``build_key`` a valid entry."""
    wasm, sidecar = entry_paths(cache_dir, build_key)
    write_atomic(sidecar, json.dumps({
        "build_key": build_key, "wasm_digest": wasm_digest, "size": wasm.stat().st_size, "handler": handler,
        "source_digest": source_digest, "toolchain": toolchain,
    }, indent=2, sort_keys=True).encode())
