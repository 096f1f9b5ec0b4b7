"""Spin OCI artifacts, and an OCI image layout on disk to keep them in.

:func:`spin_artifact` assembles what ``spin registry push`` publishes (spin ``crates/oci``
``Client::push_locked_core``, checked against spinframework/spin and the oci-client crate it
uses):

* one layer per component, media type ``application/vnd.wasm.content.layer.v1+wasm``;
* one layer per file the component mounts (its ``files``), media type
  ``application/vnd.wasm.content.layer.v1+data``, listed in the component's ``files`` as
  ``{"digest": …, "path": <relative guest path>}`` — files of at most 128 bytes are inlined
  (``"inline": <base64>``) and get no layer (``push_file_layers``, ``content_ref_for_layer``);
* the locked app (``spin.lock`` JSON: ``spin_lock_version``, ``metadata``, ``variables``,
  ``triggers``, ``components``) as the **last layer**, media type
  ``application/vnd.fermyon.spin.application.v1+config``. A component's ``source`` is the
  flattened ContentRef ``{"content_type": "application/wasm", "digest": "sha256:…"}``;
* the image config, media type ``application/vnd.oci.image.config.v1+json`` (spin uses the
  standard OCI config — not ``application/vnd.wasm.config.v0+json``) with
  ``architecture: wasm``, ``os: wasip1``, ``rootfs: {type: layers, diff_ids: []}`` and the
  label ``com.fermyon.spin.lockedAppDigest`` so different apps get different config digests;
* an OCI image manifest (``application/vnd.oci.image.manifest.v1+json``) annotated with
  ``org.opencontainers.image.title`` and ``org.opencontainers.image.created``.

Spin stamps ``created`` with now(); here it is an argument, and every JSON document is
canonical (sorted keys, compact), so equal inputs give equal manifest digests and a registry
that already has the digest can be skipped.

:class:`OciLayout` is an `OCI image layout <https://github.com/opencontainers/image-spec/blob/main/image-layout.md>`_
(``oci-layout``, ``index.json``, ``blobs/sha256/…``) that the local registry and runtime use.
Blob and index writes are atomic (temporary file + rename) and index updates hold a file lock,
so concurrent threads and processes never corrupt it.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from faasops.errors import ProviderError
from faasops.file_mounts import resolve_file_mounts
from faasops.model import Function

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
IMAGE_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
WASM_LAYER_MEDIA_TYPE = "application/vnd.wasm.content.layer.v1+wasm"
DATA_LAYER_MEDIA_TYPE = "application/vnd.wasm.content.layer.v1+data"
"""A file mounted into a component (spin crates/oci ``DATA_MEDIATYPE``): one layer per file."""
INLINE_MAX_SIZE = 128
"""Files up to this size are inlined (base64) into the locked app and get no layer (spin
crates/oci ``DEFAULT_CONTENT_REF_INLINE_MAX_SIZE``: some registries refuse tiny blobs)."""
SPIN_APP_MEDIA_TYPE = "application/vnd.fermyon.spin.application.v1+config"
LOCKED_APP_DIGEST_LABEL = "com.fermyon.spin.lockedAppDigest"
ANNOTATION_CREATED = "org.opencontainers.image.created"
ANNOTATION_TITLE = "org.opencontainers.image.title"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = "1.0.0"
DEFAULT_ROUTE = "/..."

# Spin's lower-case snake id (spin crates/serde/src/id.rs): words of lowercase letters and digits
# joined by single underscores, the first starting with a letter.
_SPIN_VARIABLE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_CHUNK = 1024 * 1024


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> tuple[str, int]:
    """``(sha256:…, size)`` of a file, read in chunks."""
    with path.open("rb") as data:
        digest = hashlib.file_digest(data, "sha256")
        return "sha256:" + digest.hexdigest(), data.tell()


@dataclass(frozen=True)
class Blob:
    """One blob of an artifact: held in memory (``data``) or on disk (``path``, not read
    until someone stores or uploads it)."""

    media_type: str
    digest: str
    size: int
    data: bytes | None = None
    path: Path | None = None

    @classmethod
    def from_bytes(cls, media_type: str, data: bytes) -> Blob:
        return cls(media_type, sha256_digest(data), len(data), data=data)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class SpinArtifact:
    """A Spin application ready to store or push: manifest bytes and the blobs they name."""

    manifest: bytes  # canonical JSON
    digest: str  # of ``manifest``
    config: Blob
    layers: tuple[Blob, ...]

    @property
    def manifest_dict(self) -> dict[str, Any]:
        return json.loads(self.manifest)

    def blobs(self) -> tuple[Blob, ...]:
        """Config first, then layers (the order a registry push uploads them in)."""
        return (self.config, *self.layers)

    def locked_app(self) -> dict[str, Any]:
        layer = next(b for b in self.layers if b.media_type == SPIN_APP_MEDIA_TYPE)
        return json.loads(layer.data or b"{}")

    def descriptor(self, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
        descriptor: dict[str, Any] = {
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": self.digest,
            "size": len(self.manifest),
        }
        if annotations:
            descriptor["annotations"] = dict(annotations)
        return descriptor


TIMEOUT_METADATA = "faasops_request_timeout_s"
"""Locked-app component metadata key holding the function's ``timeout`` in seconds."""
ALLOWED_HOSTS_METADATA = "allowed_outbound_hosts"
"""Locked-app component metadata key Spin reads the component's outbound allow-list from
(spin crates/loader/src/local.rs ``load_component``: ``.string_array("allowed_outbound_hosts", …)``)."""
DATABASES_METADATA = "databases"
"""Locked-app component metadata key holding the manifest's ``sqlite_databases`` (spin
crates/loader/src/local.rs ``.string_array("databases", component.sqlite_databases)``, read by
factor-sqlite as ``ALLOWED_DATABASES_KEY``)."""
KEY_VALUE_STORES_METADATA = "key_value_stores"
"""Locked-app component metadata key holding the manifest's ``key_value_stores`` (spin
crates/loader/src/local.rs ``.string_array("key_value_stores", …)``, read by factor-key-value as
``KEY_VALUE_STORES_KEY``): a store not listed is ``access-denied``."""


def spin_artifact(
    wasm_path: Path,
    wasm_digest: str | None,
    app_name: str,
    created: str,
    annotations: Mapping[str, str] | None = None,
    *,
    route: str = DEFAULT_ROUTE,
    env: Mapping[str, str] | None = None,
    variables: Iterable[str] = (),
    secret_variables: Iterable[str] = (),
    allowed_outbound_hosts: Iterable[str] = (),
    timeout_s: int | None = None,
    sqlite_databases: Iterable[str] = (),
    key_value_stores: Iterable[str] = (),
    files: Mapping[str, Path] | None = None,
) -> SpinArtifact:
    """The Spin OCI artifact of one HTTP component (pure apart from a ``stat`` of the wasm).

    ``app_name`` names the app and its single component; the HTTP trigger serves ``route``.
    ``env`` becomes the component's WASI environment (``os.environ`` in the handler) — it is
    part of the artifact, because Spin (and the SpinApp resource) have nowhere else to put it.
    ``variables`` and ``secret_variables`` are *declared* (required, no default; secrets
    flagged ``secret``) and exposed to the component as config of the same name, so
    ``spin_sdk.variables.get(name)`` works once the runtime supplies a value (SpinKube passes
    SpinApp ``variables`` as ``SPIN_VARIABLE_<NAME>``). No value is ever stored in the artifact.
    ``wasm_digest`` may be None, in which case the wasm is hashed here (streamed); otherwise it
    is trusted, and checked when the blob is stored (:meth:`OciLayout.put_blob`).
    ``created`` is the pinned ``org.opencontainers.image.created``; ``annotations`` are added to
    the manifest (``created`` and the title default are set by faasops). ``timeout_s``, when
    set, is recorded in the component's metadata as :data:`TIMEOUT_METADATA`.
    ``sqlite_databases`` become the component's :data:`DATABASES_METADATA`, ``key_value_stores``
    its :data:`KEY_VALUE_STORES_METADATA`. ``files`` maps guest
    paths (relative to ``/``) to host files; each becomes a ``{digest, path}`` entry of the
    component's ``files`` and a data layer after the wasm, as ``spin registry push`` lays them
    out (files of at most :data:`INLINE_MAX_SIZE` bytes are inlined instead of layered).
    """
    wasm_path = Path(wasm_path)
    if wasm_digest is None:
        wasm_digest, size = file_digest(wasm_path)
    else:
        size = wasm_path.stat().st_size
    if not _DIGEST.fullmatch(wasm_digest):
        raise ProviderError(f"{wasm_path}: not a sha256 digest: {wasm_digest!r}")
    wasm = Blob(WASM_LAYER_MEDIA_TYPE, wasm_digest, size, path=wasm_path)

    plain = sorted(set(variables))
    secret = sorted(set(secret_variables))
    for name in [*plain, *secret]:
        if not _SPIN_VARIABLE.fullmatch(name):
            raise ProviderError(
                f"{app_name}: {name!r} is not a valid Spin variable name (lowercase letters, "
                "digits and single underscores, starting with a letter)"
            )
    both = set(plain) & set(secret)
    if both:
        raise ProviderError(f"{app_name}: {', '.join(sorted(both))} declared as variable and secret")

    component: dict[str, Any] = {
        "id": app_name,
        "source": {"content_type": "application/wasm", "digest": wasm_digest},
    }
    hosts = sorted(set(allowed_outbound_hosts))
    if hosts:
        component["metadata"] = {ALLOWED_HOSTS_METADATA: hosts}
    if env:
        component["env"] = dict(env)
    if timeout_s is not None:
        # Spin ignores metadata it doesn't know; faasops' local runtime reads it (`timeout:`).
        component.setdefault("metadata", {})[TIMEOUT_METADATA] = timeout_s
    databases = list(dict.fromkeys(sqlite_databases))
    if databases:
        component.setdefault("metadata", {})[DATABASES_METADATA] = databases
    stores = list(dict.fromkeys(key_value_stores))
    if stores:
        component.setdefault("metadata", {})[KEY_VALUE_STORES_METADATA] = stores
    file_layers, file_refs = _file_layers(files or {})
    if file_refs:
        component["files"] = file_refs
    declared: dict[str, dict[str, Any]] = {name: {} for name in plain}
    declared.update({name: {"secret": True} for name in secret})
    if declared:
        component["config"] = {name: "{{ " + name + " }}" for name in declared}
    locked: dict[str, Any] = {
        "spin_lock_version": 0,
        "metadata": {"name": app_name, "trigger": {"type": "http"}},
        "triggers": [
            {
                "id": f"{app_name}-http-trigger",
                "trigger_type": "http",
                "trigger_config": {"component": app_name, "route": route},
            }
        ],
        "components": [component],
    }
    if declared:
        locked["variables"] = declared
    locked_layer = Blob.from_bytes(SPIN_APP_MEDIA_TYPE, canonical_json(locked))

    config = Blob.from_bytes(
        IMAGE_CONFIG_MEDIA_TYPE,
        canonical_json(
            {
                "architecture": "wasm",
                "os": "wasip1",
                "config": {"Labels": {LOCKED_APP_DIGEST_LABEL: locked_layer.digest}},
                "rootfs": {"type": "layers", "diff_ids": []},
            }
        ),
    )
    layers = (wasm, *file_layers, locked_layer)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": config.descriptor(),
            "layers": [layer.descriptor() for layer in layers],
            "annotations": {ANNOTATION_TITLE: app_name, **(annotations or {}), ANNOTATION_CREATED: created},
        }
    )
    return SpinArtifact(manifest=manifest, digest=sha256_digest(manifest), config=config, layers=layers)


def _file_layers(files: Mapping[str, Path]) -> tuple[list[Blob], list[dict[str, Any]]]:
    """The data layers and locked-app ``files`` entries (ContentPath: the flattened ContentRef
    plus ``path``) of ``files``, in path order."""
    layers: list[Blob] = []
    refs: list[dict[str, Any]] = []
    for guest_path in sorted(files):
        host_path = Path(files[guest_path])
        digest, size = file_digest(host_path)
        ref: dict[str, Any] = {"digest": digest, "path": guest_path}
        if size <= INLINE_MAX_SIZE:
            ref["inline"] = base64.b64encode(host_path.read_bytes()).decode("ascii")
        else:
            layers.append(Blob(DATA_LAYER_MEDIA_TYPE, digest, size, path=host_path))
        refs.append(ref)
    return layers, refs


def mounted_files(component: Mapping[str, Any], blob_path: Callable[[str], Path]) -> dict[str, bytes | Path]:
    """Guest path → content (inline bytes, or the stored blob's path from ``blob_path(digest)``)
    of a locked-app component's ``files``, as Spin's OCI loader mounts them at ``/``."""
    mounted: dict[str, bytes | Path] = {}
    for entry in component.get("files") or ():
        path = str(entry.get("path", ""))
        if "inline" in entry:
            mounted[path] = base64.b64decode(entry["inline"])
        else:
            mounted[path] = blob_path(str(entry["digest"]))
    return mounted


def spin_variable_name(name: str) -> str:
    """The Spin variable a faasops variable or secret ``name`` is exposed as: ``name`` in lower
    case. SpinKube hands SpinApp variables to Spin as ``SPIN_VARIABLE_<NAME>`` (upper-cased), so
    a secret declared as ``DB_PASSWORD`` is read with ``spin_sdk.variables.get("db_password")``."""
    return name.lower()


def function_artifact(
    function: Function,
    wasm_path: Path,
    wasm_digest: str | None,
    created: str,
    annotations: Mapping[str, str] | None = None,
) -> SpinArtifact:
    """:func:`spin_artifact` for a :class:`faasops.model.Function`: its name, ``env``,
    ``allowed_outbound_hosts``, ``timeout`` and ``sqlite_databases``, its ``files`` read from its
    source directory, and its ``variables`` and secrets declared under their
    :func:`spin_variable_name` (values stay out of the artifact)."""
    return spin_artifact(
        wasm_path,
        wasm_digest,
        function.name,
        created,
        annotations,
        env=function.env,
        variables=[spin_variable_name(name) for name in function.variables],
        secret_variables=[spin_variable_name(s.name) for s in function.secrets],
        allowed_outbound_hosts=function.allowed_outbound_hosts,
        timeout_s=function.timeout,
        sqlite_databases=function.sqlite_databases,
        key_value_stores=function.key_value_stores,
        files=resolve_file_mounts(function.source_dir, function.files) if function.files else None,
    )


# --------------------------------------------------------------------------------------------
# OCI image layout
# --------------------------------------------------------------------------------------------


class OciLayout:
    """An OCI image layout directory: ``oci-layout``, ``index.json`` and ``blobs/sha256/``.

    Manifests are listed in ``index.json`` under the ``org.opencontainers.image.ref.name``
    annotation; putting an artifact under an existing ref name moves that name.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self._blobs = self.root / "blobs" / "sha256"
        self._index = self.root / "index.json"
        self._lock = self.root / ".index.lock"
        self._blobs.mkdir(parents=True, exist_ok=True)
        layout_file = self.root / "oci-layout"
        if not layout_file.exists():
            write_atomic(layout_file, canonical_json({"imageLayoutVersion": LAYOUT_VERSION}))
        if not self._index.exists():
            with file_lock(self._lock):
                if not self._index.exists():
                    self._write_index([])

    # ---------------------------------------------------------------------------------- blobs

    def blob_path(self, digest: str) -> Path:
        if not _DIGEST.fullmatch(digest):
            raise ProviderError(f"not a sha256 digest: {digest!r}")
        return self._blobs / digest.split(":", 1)[1]

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def put_blob(self, content: Path | bytes, digest: str) -> bool:
        """Store ``content`` (a file, streamed, or bytes) under ``digest``; return False when
        the blob was already there. The content is hashed on the way in and must match."""
        dest = self.blob_path(digest)
        if dest.is_file():
            return False
        # Concurrent writers of one digest write identical bytes: whichever rename wins is right.
        write_atomic(dest, content, expected_digest=digest)
        return True

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise ProviderError(f"{self.root}: no blob {digest}") from None

    # ------------------------------------------------------------------------------ artifacts

    def put_artifact(self, artifact: SpinArtifact, ref_name: str) -> str:
        """Store the artifact's missing blobs and manifest and point ``ref_name`` at it; return
        the manifest digest."""
        for blob in artifact.blobs():
            self.put_blob(blob.path if blob.path is not None else (blob.data or b""), blob.digest)
        self.put_blob(artifact.manifest, artifact.digest)
        entry = artifact.descriptor({ANNOTATION_REF_NAME: ref_name})
        with file_lock(self._lock):
            manifests = [m for m in self._read_index() if _ref_name(m) != ref_name]
            manifests.append(entry)
            self._write_index(manifests)
        return artifact.digest

    def resolve(self, ref_or_digest: str) -> dict[str, Any]:
        """The manifest named by a ref name or a ``sha256:`` digest."""
        digest = ref_or_digest if _DIGEST.fullmatch(ref_or_digest) else self.list_refs().get(ref_or_digest)
        if digest is None:
            raise ProviderError(f"{self.root}: no artifact named {ref_or_digest!r}")
        return json.loads(self.read_blob(digest))

    def wasm_path_for(self, manifest_digest: str) -> Path:
        """The blob path of the artifact's (first) component layer."""
        manifest = self.resolve(manifest_digest)
        for layer in manifest.get("layers", []):
            if layer.get("mediaType") == WASM_LAYER_MEDIA_TYPE:
                path = self.blob_path(layer["digest"])
                if not path.is_file():
                    raise ProviderError(f"{self.root}: component blob {layer['digest']} is missing")
                return path
        raise ProviderError(f"{self.root}: {manifest_digest} has no wasm component layer")

    def locked_app_for(self, manifest_digest: str) -> dict[str, Any]:
        """The Spin locked app (config layer) of an artifact: triggers, components, their env."""
        manifest = self.resolve(manifest_digest)
        for layer in manifest.get("layers", []):
            if layer.get("mediaType") == SPIN_APP_MEDIA_TYPE:
                return json.loads(self.read_blob(layer["digest"]))
        raise ProviderError(f"{self.root}: {manifest_digest} has no Spin application config layer")

    def list_refs(self) -> dict[str, str]:
        """``{ref name: manifest digest}``, sorted by name."""
        refs = {_ref_name(m): m["digest"] for m in self._read_index() if _ref_name(m)}
        return dict(sorted(refs.items()))

    # ------------------------------------------------------------------ garbage collection

    def manifest_entries(self) -> list[tuple[str, str]]:
        """``(ref name, manifest digest)`` of every manifest ``index.json`` lists."""
        return [(_ref_name(m) or "", m["digest"]) for m in self._read_index()]

    def stored_blobs(self) -> dict[str, int]:
        """``{digest: size}`` of every complete blob (temporary files of writers left out)."""
        if not self._blobs.is_dir():
            return {}
        return {f"sha256:{path.name}": path.stat().st_size for path in self._blobs.iterdir()
                if path.is_file() and _DIGEST.fullmatch(f"sha256:{path.name}")}

    def referenced_blobs(self, manifest_digests: Iterable[str]) -> set[str]:
        """The blobs the manifests need: each manifest, its config and its layers (manifests
        whose blob is gone are skipped)."""
        needed: set[str] = set()
        for digest in manifest_digests:
            path = self.blob_path(digest)
            if not path.is_file():
                continue
            manifest = json.loads(path.read_bytes())
            needed.add(digest)
            needed.update(d["digest"] for d in [manifest.get("config") or {}, *manifest.get("layers", [])] if "digest" in d)
        return needed

    def remove_entries(self, entries: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Drop these ``(ref name, digest)`` entries from ``index.json``; return those that
        were there. Their blobs stay (other entries may share them)."""
        wanted = set(entries)
        with file_lock(self._lock):
            manifests = self._read_index()
            gone = [(_ref_name(m) or "", m["digest"]) for m in manifests if ((_ref_name(m) or ""), m["digest"]) in wanted]
            if gone:
                self._write_index([m for m in manifests if ((_ref_name(m) or ""), m["digest"]) not in wanted])
        return gone

    @contextmanager
    def index_locked(self) -> Iterator[None]:
        """Hold the index lock: no artifact is added to the layout meanwhile."""
        with file_lock(self._lock):
            yield

    # ---------------------------------------------------------------------------------- index

    def _read_index(self) -> list[dict[str, Any]]:
        try:
            return list(json.loads(self._index.read_bytes()).get("manifests", []))
        except FileNotFoundError:
            return []
        except ValueError as exc:
            raise ProviderError(f"{self._index}: not valid JSON ({exc})") from exc

    def _write_index(self, manifests: list[dict[str, Any]]) -> None:
        index = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, "manifests": manifests}
        write_atomic(self._index, json.dumps(index, indent=2, sort_keys=True).encode() + b"\n")


def _ref_name(descriptor: Mapping[str, Any]) -> str | None:
    return (descriptor.get("annotations") or {}).get(ANNOTATION_REF_NAME)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing). ``flock`` treats every
    ``open()`` on its own, so this excludes other threads of this process as well as other
    processes; the kernel drops the lock when a holder dies, even by ``kill -9``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_atomic(dest: Path, content: Path | bytes, expected_digest: str | None = None) -> tuple[str, int]:
    """Write ``content`` (bytes, or a file streamed in chunks) to ``dest`` through a temporary
    file in the same directory and a rename, hashing it on the way; return ``(digest, size)``.

    A crash leaves either the old ``dest`` or the complete new one, never a truncated file. With
    ``expected_digest``, content that hashes differently raises :class:`ProviderError` and
    ``dest`` is left alone.
    """
    hasher = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(content, (bytes, bytearray)):
                hasher.update(content)
                out.write(content)
                size = len(content)
            else:
                with Path(content).open("rb") as data:
                    while chunk := data.read(_CHUNK):
                        hasher.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        digest = "sha256:" + hasher.hexdigest()
        if expected_digest is not None and digest != expected_digest:
            raise ProviderError(f"{dest.name}: content has digest {digest}, expected {expected_digest}")
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest, size
