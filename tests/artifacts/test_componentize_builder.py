"""The componentize-py builder, with real componentize-py builds."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import pluggy
import pytest

from build_support import HELLO_HANDLER, CountingBuilder, make_function, make_project, write_source
from faasops import hookspecs
from faasops.errors import ProviderError
from faasops.model import ProviderConfig
from faasops.plugins import componentize
from faasops.plugins.componentize import ComponentizePyBuilder, error_tail, extract_archive
from faasops.providers import Builder, SourceSnapshot
from faasops.source import snapshot_directory

# `\0asm` + the component-model layer version (0x0d, layer 1), not a core module's 1.0.
COMPONENT_MAGIC = b"\x00asm\x0d\x00\x01\x00"


def sha256_file(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_build_produces_a_wasm_component_in_the_cache(hello_build, build_cache):
    result = hello_build.result
    assert result.cached is False
    assert result.build_key == hello_build.builder.build_key(hello_build.function, hello_build.snapshot)
    assert result.wasm_path == build_cache / f"{result.build_key.split(':')[1]}.wasm"
    assert result.wasm_path.read_bytes()[:8] == COMPONENT_MAGIC
    assert result.wasm_digest == sha256_file(result.wasm_path)
    sidecar = json.loads(result.wasm_path.with_suffix(".json").read_text())
    assert sidecar["wasm_digest"] == result.wasm_digest
    assert sidecar["size"] == result.wasm_path.stat().st_size
    # componentize-py writes __pycache__ into the app dir: it must not be the cache or the source.
    assert not (build_cache / "__pycache__").exists()
    assert not (hello_build.function.source_dir / "__pycache__").exists()


@pytest.mark.slow
def test_second_build_with_the_same_key_is_cached_without_running_componentize(hello_build):
    builder = hello_build.builder
    mtime = hello_build.result.wasm_path.stat().st_mtime_ns
    calls = builder.componentize_calls

    again = builder.build(hello_build.function, hello_build.snapshot)

    assert again.cached is True
    assert builder.componentize_calls == calls
    assert (again.build_key, again.wasm_path, again.wasm_digest) == (
        hello_build.result.build_key,
        hello_build.result.wasm_path,
        hello_build.result.wasm_digest,
    )
    assert again.wasm_path.stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_a_fresh_builder_on_the_same_cache_reuses_the_build(hello_build, build_cache):
    other = CountingBuilder(build_cache)
    again = other.build(hello_build.function, hello_build.snapshot)
    assert again.cached is True
    assert other.componentize_calls == 0


@pytest.mark.slow
def test_builder_satisfies_the_provider_protocol(hello_build):
    assert isinstance(hello_build.builder, Builder)


def test_toolchain_names_installed_componentize_py_and_spin_sdk():
    assert ComponentizePyBuilder(Path("/nonexistent")).toolchain == "componentize-py==0.16.0;spin-sdk==3.4.1"


@pytest.mark.slow
def test_build_key_covers_source_handler_and_toolchain(hello_build, tmp_path):
    builder, function, snapshot = hello_build.builder, hello_build.function, hello_build.snapshot
    key = builder.build_key(function, snapshot)
    assert key.startswith("sha256:") and len(key) == 71
    assert builder.build_key(function, snapshot) == key  # pure
    assert builder.build_key(replace(function, handler="main"), snapshot) != key
    assert builder.build_key(function, replace(snapshot, digest="sha256:" + "0" * 64)) != key
    other_toolchain = ComponentizePyBuilder(tmp_path)
    other_toolchain.toolchain = "componentize-py==0.17.0;spin-sdk==3.4.1"
    assert other_toolchain.build_key(function, snapshot) != key
    # Only the build inputs count: names, env and replicas do not change the component.
    assert builder.build_key(replace(function, name="other", env={"A": "1"}, replicas=3), snapshot) == key


@pytest.mark.slow
def test_handler_with_a_syntax_error_fails_with_the_python_error(tmp_path):
    source = write_source(tmp_path / "broken", {"app.py": "def broken(:\n    pass\n"})
    builder = CountingBuilder(tmp_path / "cache")
    with pytest.raises(ProviderError) as caught:
        builder.build(make_function(source), snapshot_directory(source))
    message = str(caught.value)
    assert "demo/hello" in message
    assert "SyntaxError: invalid syntax" in message
    assert 'File "app.py", line 1' in message
    assert "Stack backtrace" not in message and "anyhow" not in message
    assert not list((tmp_path / "cache").glob("*.wasm")), "a failed build leaves no cache entry"


def test_handler_with_an_import_error_fails_with_the_python_error(tmp_path):
    # Found before componentize-py runs (faasops.imports_check), located in the source.
    source = write_source(tmp_path / "imports", {"app.py": "import does_not_exist\n"})
    builder = CountingBuilder(tmp_path / "cache")
    with pytest.raises(ProviderError) as caught:
        builder.build(make_function(source), snapshot_directory(source))
    assert "app.py:1:1: imports `does_not_exist`, but no module `does_not_exist` is in the source directory" in str(caught.value)
    assert builder.componentize_calls == 0


@pytest.mark.slow
def test_handler_in_a_dotted_module_builds(tmp_path):
    source = write_source(tmp_path / "pkg", {"web/__init__.py": "", "web/handler.py": HELLO_HANDLER})
    function = make_function(source, handler="web.handler")
    builder = CountingBuilder(tmp_path / "cache")
    result = builder.build(function, snapshot_directory(source))
    assert result.cached is False and builder.componentize_calls == 1
    assert result.wasm_path.read_bytes()[:8] == COMPONENT_MAGIC


@pytest.mark.parametrize("handler", ["-o", "app-main", "../app", "handlers/app", "app; rm -rf /", ""])
def test_handler_that_is_not_a_module_name_is_rejected_before_building(tmp_path, handler):
    source = write_source(tmp_path / "src", {"app.py": HELLO_HANDLER})
    builder = CountingBuilder(tmp_path / "cache")
    with pytest.raises(ProviderError, match="not a Python module name"):
        builder.build(make_function(source, handler=handler), snapshot_directory(source))
    assert builder.componentize_calls == 0


@pytest.mark.slow
def test_concurrent_builds_of_one_key_build_once_and_replace_a_torn_entry(hello_build, tmp_path):
    """Threads racing on one key share one build; a truncated wasm left by a killed build
    (no sidecar) is not a cache hit."""
    cache = tmp_path / "cache"
    cache.mkdir()
    key_hex = hello_build.result.build_key.split(":")[1]
    (cache / f"{key_hex}.wasm").write_bytes(COMPONENT_MAGIC + b"truncated")
    builder = CountingBuilder(cache)
    results, errors = [], []

    def build():
        try:
            results.append(builder.build(hello_build.function, hello_build.snapshot))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert builder.componentize_calls == 1
    assert sorted(r.cached for r in results) == [False, True, True]
    assert len({r.wasm_digest for r in results}) == 1
    assert results[0].wasm_digest == sha256_file(cache / f"{key_hex}.wasm")
    assert not list(cache.glob(".*.tmp")), "no temporary files left behind"


KILLED_BUILD = """\
import sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import conftest  # makes faasops.plugins importable from the source tree
from pathlib import Path
from build_support import CountingBuilder, make_function
from faasops.source import snapshot_directory
source = Path(sys.argv[3])
CountingBuilder(Path(sys.argv[4])).build(make_function(source), snapshot_directory(source))
"""


@pytest.mark.slow
def test_a_build_killed_mid_way_leaves_no_cache_entry(tmp_path):
    source = write_source(tmp_path / "src", {"app.py": HELLO_HANDLER})
    cache = tmp_path / "cache"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    here = Path(__file__).parent
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_BUILD, str(here.parents[1]), str(here), str(source), str(cache)],
        start_new_session=True,  # its own process group: kill componentize-py with it
        env={**os.environ, "TMPDIR": str(scratch)},  # where the killed build's temp dir stays
    )
    try:
        deadline = time.monotonic() + 30
        while not list(cache.glob("locks/*.lock")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # componentize-py is running now (a build takes several seconds)
        assert process.poll() is None, "the build finished before it could be killed"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    assert not list(cache.glob("*.wasm")) and not list(cache.glob("*.json"))
    builder = CountingBuilder(cache)
    function, snapshot = make_function(source), snapshot_directory(source)
    hex_key = builder.build_key(function, snapshot).split(":")[1]
    assert builder._cached(builder.build_key(function, snapshot), cache / f"{hex_key}.wasm", cache / f"{hex_key}.json") is None


def test_cache_hit_trusts_the_sidecar_instead_of_rehashing(tmp_path):
    source = write_source(tmp_path / "src", {"app.py": HELLO_HANDLER})
    function, snapshot = make_function(source), snapshot_directory(source)
    cache = tmp_path / "cache"
    cache.mkdir()
    builder = CountingBuilder(cache)
    key = builder.build_key(function, snapshot)
    key_hex = key.split(":")[1]
    (cache / f"{key_hex}.wasm").write_bytes(b"0123456789")
    (cache / f"{key_hex}.json").write_text(json.dumps({"build_key": key, "wasm_digest": "sha256:recorded", "size": 10}))
    result = builder.build(function, snapshot)
    assert (result.cached, result.wasm_digest, builder.componentize_calls) == (True, "sha256:recorded", 0)


def test_a_sidecar_that_does_not_match_the_wasm_is_not_a_cache_hit(tmp_path):
    source = write_source(tmp_path / "src", {"app.py": HELLO_HANDLER})
    function, snapshot = make_function(source), snapshot_directory(source)
    builder = CountingBuilder(tmp_path / "cache")
    key = builder.build_key(function, snapshot)
    wasm_path = tmp_path / "cache" / f"{key.split(':')[1]}.wasm"
    wasm_path.parent.mkdir()
    wasm_path.write_bytes(b"012345")  # truncated: the sidecar says 10 bytes
    sidecar = {"build_key": key, "wasm_digest": "sha256:recorded", "size": 10}
    wasm_path.with_suffix(".json").write_text(json.dumps(sidecar))
    assert builder._cached(key, wasm_path, wasm_path.with_suffix(".json")) is None
    wasm_path.write_bytes(b"0123456789")
    other_key = {**sidecar, "build_key": "sha256:" + "0" * 64}
    wasm_path.with_suffix(".json").write_text(json.dumps(other_key))
    assert builder._cached(key, wasm_path, wasm_path.with_suffix(".json")) is None


def _archive(*members: tarfile.TarInfo, data: bytes = b"x = 1\n") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for info in members:
            if info.isfile():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return raw.getvalue()


def _member(name: str, type_: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("../escape.py"),
        _member("pkg/../../escape.py"),
        _member("/etc/escape.py"),
        _member("link.py", tarfile.SYMTYPE, "/etc/passwd"),
        _member("hard.py", tarfile.LNKTYPE, "app.py"),
        _member("dev", tarfile.CHRTYPE),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "device"],
)
def test_unsafe_source_archives_are_refused(tmp_path, member):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ProviderError, match="source archive"):
        extract_archive(_archive(_member("app.py"), member), dest)
    assert not (tmp_path / "escape.py").exists()


def test_unsafe_archive_fails_the_build_before_componentize(tmp_path):
    snapshot = SourceSnapshot(digest="sha256:" + "1" * 64, archive=_archive(_member("../x.py")), files=("../x.py",), size=6)
    builder = CountingBuilder(tmp_path / "cache")
    with pytest.raises(ProviderError, match="refusing path"):
        builder.build(make_function(tmp_path / "src"), snapshot)
    assert builder.componentize_calls == 0


def test_error_tail_drops_rust_backtraces_and_sandbox_paths():
    output = (
        'AssertionError:   File "/0/app.py", line 1\n    def broken(:\nSyntaxError: invalid syntax\n\n'
        "Caused by:\n    SyntaxError: invalid syntax (app.py, line 1)\n\nStack backtrace:\n"
        "   0: anyhow::error::<impl anyhow::Error>::msg\n"
    )
    tail = error_tail(output)
    assert 'File "app.py", line 1' in tail
    assert "Caused by:" in tail
    assert "anyhow" not in tail and "Stack backtrace" not in tail


# ------------------------------------------------------------------------------------- plugin


def _plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(componentize)
    pm.check_pending()
    return pm


def test_plugin_advertises_and_creates_the_builder(tmp_path, monkeypatch):
    monkeypatch.delenv("FAASOPS_BUILD_CACHE", raising=False)
    pm = _plugin_manager()
    assert ("builder", "componentize-py") in [(s, t) for r in pm.hook.faasops_provider_types() for s, t, _ in r]
    project = make_project(tmp_path)
    builder = pm.hook.faasops_builder(config=ProviderConfig("builder", "componentize-py"), project=project)
    assert isinstance(builder, ComponentizePyBuilder)
    assert builder.cache_dir == tmp_path / ".faasops" / "builds"
    assert pm.hook.faasops_builder(config=ProviderConfig("builder", "remote"), project=project) is None


def test_cache_dir_option_wins_over_the_environment(tmp_path, monkeypatch):
    pm = _plugin_manager()
    project = make_project(tmp_path)
    monkeypatch.setenv("FAASOPS_BUILD_CACHE", str(tmp_path / "from-env"))
    from_env = pm.hook.faasops_builder(config=ProviderConfig("builder", "componentize-py"), project=project)
    assert from_env.cache_dir == tmp_path / "from-env"
    config = ProviderConfig("builder", "componentize-py", {"cache_dir": "relative/cache"})
    from_option = pm.hook.faasops_builder(config=config, project=project)
    assert from_option.cache_dir == tmp_path / "relative" / "cache"
