"""Issue 20, item 5: a host API the local runtime does not offer gives the guest the error value
Spin's host returns when the component may not use it, so the app's own ``try/except`` fallback
runs; the request's log names the interface.

The ``outbound`` test handler's ``/fallbacks`` route calls Redis, MySQL, PostgreSQL, MQTT and the
LLM API, each inside ``try/except``, and answers what each raised
(``Err(<error case>: <payload>)``). Expected cases follow Spin's hosts (see
``faasops/runtime/unsupported.py``); the call goes through the real CLI (``faasops invoke``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli_support import REPO, run_faasops

from faasops.runtime.unsupported import postgres_not_permitted

HANDLER = REPO / "tests" / "runtime" / "handlers" / "outbound" / "app.py"

MANIFEST = """\
apiVersion: faasops/v1
project: fallbacks
workspaces:
  - name: demo
    functions:
      - name: outbound
        source: functions/outbound
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fallbacks")
    (root / "functions" / "outbound").mkdir(parents=True)
    shutil.copy(HANDLER, root / "functions" / "outbound" / "app.py")
    (root / "faas.yaml").write_text(MANIFEST)
    applied = run_faasops("-C", str(root), "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    return root


def test_unsupported_host_apis_raise_spins_errors_that_the_handler_catches(project: Path) -> None:
    result = run_faasops("-C", str(project), "invoke", "demo/outbound", "--path", "/fallbacks")

    assert result.code == 0, result.output
    caught = json.loads(result.out)
    assert caught["redis"] == "Err(Error_InvalidAddress: )"
    # Spin's own messages, byte for byte (factor-outbound-mysql/-mqtt/-pg, factor-llm).
    assert caught["mysql"] == "Err(Error_ConnectionFailed: address mysql://root@127.0.0.1/db is not permitted)"
    assert caught["postgres"] == "Err(Error_ConnectionFailed: address postgres://127.0.0.1 is not permitted)"
    assert caught["mqtt"] == "Err(Error_ConnectionFailed: address mqtt://127.0.0.1:1883 is not permitted)"
    for name, model in (("llm", "llama2-chat"), ("embeddings", "all-minilm-l6-v2")):
        assert caught[name] == (
            f"Err(Error_InvalidInput: The component does not have access to use '{model}'. To give the component "
            f"access, add '{model}' to the 'ai_models' key for the component in your spin.toml manifest)"), caught[name]


@pytest.mark.parametrize("address, shown", [
    ("postgres://user:secret@db.example.com:5433/app", "postgres://db.example.com:5433"),
    ("postgresql://db.example.com/app?sslmode=require", "postgres://db.example.com"),
    ("postgres://[::1]:5432/app", "postgres://::1:5432"),
    ("host=db1,db2 port=6000,6001 user=me", "postgres://db1:6000"),
])
def test_postgres_denial_names_the_first_host_as_spin_does(address: str, shown: str) -> None:
    error = postgres_not_permitted("fermyon:spin/postgres@2.0.0", address)
    assert error == ("connection-failed", f"address {shown} is not permitted")


def test_the_request_log_names_each_unsupported_interface(project: Path) -> None:
    assert run_faasops("-C", str(project), "invoke", "demo/outbound", "--path", "/fallbacks").code == 0

    logs = run_faasops("-C", str(project), "logs", "demo/outbound", "--limit", "1")

    assert logs.code == 0, logs.output
    for interface, function, error in (
            ("fermyon:spin/redis@2.0.0", "[static]connection.open", "invalid-address"),
            ("fermyon:spin/mysql@2.0.0", "[static]connection.open", "connection-failed"),
            ("fermyon:spin/postgres@2.0.0", "[static]connection.open", "connection-failed"),
            ("fermyon:spin/mqtt@2.0.0", "[static]connection.open", "connection-failed"),
            ("fermyon:spin/llm@2.0.0", "infer", "invalid-input"),
            ("fermyon:spin/llm@2.0.0", "generate-embeddings", "invalid-input")):
        assert (f"[faasops] {interface} ({function}) is not supported by faasops' local runtime: "
                f"returned error {error} to the function") in logs.output
