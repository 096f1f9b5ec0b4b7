"""``wasi:filesystem`` 0.2: a component's ``files``, mounted read-only at ``/``.

Spin preopens one directory, ``/``, holding the component's files (and none when it has no
files); the guest reads them with ``open()`` as usual. Here the mount is a :class:`MountedFiles`
tree built once per app from the locked app's ``files``; every request sees the same immutable
tree. Anything that would write answers ``read-only``; a path that is absolute, climbs above
the descriptor it is resolved from with ``..``, or is missing answers the error wasmtime's
host gives (``not-permitted``, ``no-entry``). There are no symbolic links.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping

from faasops.runtime.host import HOST_API, RequestState, Resource, WitResult
from faasops.runtime.wasi import InputStream

TYPES = "wasi:filesystem/types@0.2"
PREOPENS = "wasi:filesystem/preopens@0.2"
MOUNT_POINT = "/"


class MountedFiles:
    """An immutable directory tree: guest path (relative, ``/``-separated) → file content, given
    as bytes or as a host file read on first use."""

    def __init__(self, files: Mapping[str, bytes | Path]):
        self._files: dict[tuple[str, ...], bytes | Path] = {}
        self._dirs: dict[tuple[str, ...], set[str]] = {(): set()}
        for guest_path, content in files.items():
            parts = tuple(p for p in guest_path.split("/") if p not in ("", "."))
            if not parts:
                continue
            self._files[parts] = content
            for depth in range(len(parts)):
                self._dirs.setdefault(parts[:depth], set()).add(parts[depth])

    def __bool__(self) -> bool:
        return bool(self._files)

    def is_dir(self, parts: tuple[str, ...]) -> bool:
        return parts in self._dirs

    def exists(self, parts: tuple[str, ...]) -> bool:
        return parts in self._files or parts in self._dirs

    def entries(self, parts: tuple[str, ...]) -> list[str]:
        return sorted(self._dirs.get(parts, ()))

    def content(self, parts: tuple[str, ...]) -> bytes:
        content = self._files[parts]
        if isinstance(content, Path):
            content = content.read_bytes()
            self._files[parts] = content  # immutable blobs: read each once
        return content

    def size(self, parts: tuple[str, ...]) -> int:
        if parts in self._dirs:
            return 0
        content = self._files[parts]
        return content.stat().st_size if isinstance(content, Path) else len(content)


class Descriptor(Resource):
    """``descriptor``: a directory or file of the mount."""

    resource = "descriptor"

    def __init__(self, mount: MountedFiles, parts: tuple[str, ...]):
        self.mount = mount
        self.parts = parts

    @property
    def is_dir(self) -> bool:
        return self.mount.is_dir(self.parts)


class DirectoryEntryStream(Resource):
    """``directory-entry-stream``: the remaining entries of a directory listing."""

    resource = "directory-entry-stream"

    def __init__(self, entries: list[dict[str, Any]]):
        self.entries = entries


def _resolve(base: Descriptor, path: str) -> tuple[str, ...] | str:
    """The parts of ``path`` resolved from ``base``, or the error-code for it."""
    if path.startswith("/"):
        return "not-permitted"
    parts = list(base.parts)
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if len(parts) == len(base.parts):  # wasmtime's cap-std refuses leaving the base
                return "not-permitted"
            parts.pop()
            continue
        parts.append(part)
    resolved = tuple(parts)
    if not base.mount.exists(resolved):
        return "no-entry"
    return resolved


def _type(mount: MountedFiles, parts: tuple[str, ...]) -> str:
    return "directory" if mount.is_dir(parts) else "regular-file"


def _stat(mount: MountedFiles, parts: tuple[str, ...]) -> dict[str, Any]:
    return {"type": _type(mount, parts), "link-count": 1, "size": mount.size(parts),
            "data-access-timestamp": None, "data-modification-timestamp": None,
            "status-change-timestamp": None}


def _hash(parts: tuple[str, ...]) -> dict[str, int]:
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return {"lower": int.from_bytes(digest[:8], "little"), "upper": int.from_bytes(digest[8:16], "little")}


@HOST_API.func(PREOPENS, "get-directories")
def _get_directories(state: RequestState) -> list[Any]:
    mount: MountedFiles | None = state.files
    if not mount:
        return []
    return [(Descriptor(mount, ()), MOUNT_POINT)]


@HOST_API.func(TYPES, "[method]descriptor.get-type")
def _get_type(state: RequestState, d: Descriptor) -> WitResult:
    return ("ok", _type(d.mount, d.parts))


@HOST_API.func(TYPES, "[method]descriptor.get-flags")
def _get_flags(state: RequestState, d: Descriptor) -> WitResult:
    return ("ok", {"read"})


@HOST_API.func(TYPES, "[method]descriptor.stat")
def _stat_fd(state: RequestState, d: Descriptor) -> WitResult:
    return ("ok", _stat(d.mount, d.parts))


@HOST_API.func(TYPES, "[method]descriptor.stat-at")
def _stat_at(state: RequestState, d: Descriptor, path_flags: set[str], path: str) -> WitResult:
    parts = _resolve(d, path)
    return ("err", parts) if isinstance(parts, str) else ("ok", _stat(d.mount, parts))


@HOST_API.func(TYPES, "[method]descriptor.open-at")
def _open_at(state: RequestState, d: Descriptor, path_flags: set[str], path: str,
             open_flags: set[str], flags: set[str]) -> WitResult:
    if not d.is_dir:
        return ("err", "not-directory")
    parts = _resolve(d, path)
    if isinstance(parts, str):
        if parts == "no-entry" and "create" in open_flags:
            return ("err", "read-only")
        return ("err", parts)
    if "exclusive" in open_flags and "create" in open_flags:
        return ("err", "exist")
    if {"write", "mutate-directory"} & flags or "truncate" in open_flags:
        return ("err", "read-only")
    if "directory" in open_flags and not d.mount.is_dir(parts):
        return ("err", "not-directory")
    return ("ok", Descriptor(d.mount, parts))


@HOST_API.func(TYPES, "[method]descriptor.read")
def _read(state: RequestState, d: Descriptor, length: int, offset: int) -> WitResult:
    if d.is_dir:
        return ("err", "is-directory")
    content = d.mount.content(d.parts)
    chunk = content[offset:offset + length]
    return ("ok", (chunk, offset + len(chunk) >= len(content)))


@HOST_API.func(TYPES, "[method]descriptor.read-via-stream")
def _read_via_stream(state: RequestState, d: Descriptor, offset: int) -> WitResult:
    if d.is_dir:
        return ("err", "is-directory")
    return ("ok", InputStream(d.mount.content(d.parts)[offset:]))


@HOST_API.func(TYPES, "[method]descriptor.read-directory")
def _read_directory(state: RequestState, d: Descriptor) -> WitResult:
    if not d.is_dir:
        return ("err", "not-directory")
    entries = [{"type": _type(d.mount, d.parts + (name,)), "name": name}
               for name in d.mount.entries(d.parts)]
    return ("ok", DirectoryEntryStream(entries))


@HOST_API.func(TYPES, "[method]directory-entry-stream.read-directory-entry")
def _read_directory_entry(state: RequestState, stream: DirectoryEntryStream) -> WitResult:
    return ("ok", stream.entries.pop(0) if stream.entries else None)


@HOST_API.func(TYPES, "[method]descriptor.metadata-hash")
def _metadata_hash(state: RequestState, d: Descriptor) -> WitResult:
    return ("ok", _hash(d.parts))


@HOST_API.func(TYPES, "[method]descriptor.metadata-hash-at")
def _metadata_hash_at(state: RequestState, d: Descriptor, path_flags: set[str], path: str) -> WitResult:
    parts = _resolve(d, path)
    return ("err", parts) if isinstance(parts, str) else ("ok", _hash(parts))


@HOST_API.func(TYPES, "[method]descriptor.is-same-object")
def _is_same_object(state: RequestState, d: Descriptor, other: Descriptor) -> bool:
    return d.mount is other.mount and d.parts == other.parts


@HOST_API.func(TYPES, "[method]descriptor.readlink-at")
def _readlink_at(state: RequestState, d: Descriptor, path: str) -> WitResult:
    parts = _resolve(d, path)
    return ("err", parts if isinstance(parts, str) else "invalid")


@HOST_API.func(TYPES, "[method]descriptor.advise")
def _advise(state: RequestState, d: Descriptor, *_: Any) -> WitResult:
    return ("ok", None)


@HOST_API.func(TYPES, "[method]descriptor.sync-data")
@HOST_API.func(TYPES, "[method]descriptor.sync")
def _sync(state: RequestState, d: Descriptor) -> WitResult:
    return ("ok", None)


def _read_only(state: RequestState, d: Descriptor, *_: Any) -> WitResult:
    return ("err", "read-only")


for _name in ("write-via-stream", "append-via-stream", "set-size", "set-times", "write",
              "create-directory-at", "set-times-at", "link-at", "remove-directory-at",
              "rename-at", "symlink-at", "unlink-file-at"):
    HOST_API.func(TYPES, f"[method]descriptor.{_name}")(_read_only)
