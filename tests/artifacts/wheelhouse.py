"""Wheels written by hand for the dependency tests: a local ``--find-links`` directory makes pip's
resolution hermetic (``PIP_NO_INDEX=1``, ``PIP_FIND_LINKS=<dir>``)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def write_wheel(wheelhouse: Path, name: str, version: str, files: dict[str, str | bytes],
                tag: str = "py3-none-any", requires: tuple[str, ...] = ()) -> Path:
    """A valid wheel ``<name>-<version>-<tag>.whl`` holding ``files`` (path → content) plus its
    dist-info (METADATA with ``Requires-Dist`` lines, WHEEL with ``tag``, RECORD)."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    pure = tag.endswith("-none-any")
    contents: dict[str, bytes] = {path: data.encode() if isinstance(data, str) else data for path, data in files.items()}
    contents[f"{info}/METADATA"] = metadata.encode()
    contents[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: faasops-tests\nRoot-Is-Purelib: {str(pure).lower()}\n"
                                 f"Tag: {tag}\n").encode()
    record = "".join(f"{path},sha256={_urlsafe_digest(data)},{len(data)}\n" for path, data in contents.items())
    contents[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = wheelhouse / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in contents.items():
            archive.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), data)
    return path


def file_hash(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _urlsafe_digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
