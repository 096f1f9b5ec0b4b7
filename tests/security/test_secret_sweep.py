"""Secrets never leave their source: with unique marker values planted as AWS credentials
(``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``), the registry password (``password_env``), the
Kubernetes bearer token (kubeconfig, TLS) and the value of a Kubernetes Secret a function
references, the cloud example goes through validate, plan (text, JSON, markdown, ``--out``),
apply of the saved plan, plan, get, tasks and logs, and through failures that produce error
text (a wrong registry password, a wrong Kubernetes token → 401, unreachable endpoints). No marker
(nor its base64 or basic-auth form) may appear in any stdout/stderr, any file in the project
(``.faasops/`` and the plan file included), the DynamoDB state and logs tables, S3 object
metadata, task messages, nor in the text, chain and log records of provider exceptions raised in
process."""

from __future__ import annotations

import json
import logging
import socket
import traceback
from pathlib import Path
from typing import Any, Iterator

import pytest

from faasops.engine import Engine
from faasops.errors import FaasopsError
from faasops.manifest import load_project
from faasops.plugins.aws_logs import put_log, table_definition
from faasops.source import snapshot_directory

from cloud_security_support import LOGS_TABLE, REGISTRY_PASSWORD_ENV, SOURCES_BUCKET, STATE_TABLE, Secrets, SecureCloud

NO_RETRY = {"max_attempts": 1}
# A change that makes apply push a new artifact without a rebuild (env is baked into it).
HELLO_CHANGED = {"workspaces": [{"name": "storefront", "functions": [{"name": "hello", "env": {"SWEEP": "changed"}}]}]}


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, secrets: Secrets) -> Iterator[SecureCloud]:
    services = SecureCloud(tmp_path_factory.mktemp("secure-cloud"), secrets)
    try:
        yield services.start()
    finally:
        services.stop()


@pytest.fixture(scope="module")
def swept(cloud: SecureCloud, secrets: Secrets, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole scenario, once; the tests below each sweep one place it could have leaked to."""
    project = cloud.copy_example(tmp_path_factory.mktemp("sweep"))
    assert cloud.kubectl("create", "namespace", "storefront").returncode == 0
    created = cloud.kubectl("-n", "storefront", "create", "secret", "generic", "stripe",
                            f"--from-literal=api-key={secrets.kube_secret_value}")
    assert created.returncode == 0, created.stderr
    dynamodb = cloud.client("dynamodb")
    dynamodb.create_table(**table_definition(LOGS_TABLE))
    for function in ("hello", "checkout"):
        put_log(dynamodb, LOGS_TABLE, "storefront", function, f"{function} served a request", level="info")

    ok = lambda *args, **kw: _expect(cloud.faasops(project, *args, **kw), 0)  # noqa: E731
    ok("validate")
    _expect(cloud.faasops(project, "plan", "--detailed-exitcode"), 2)
    ok("plan", "--format", "json")
    ok("plan", "--format", "markdown")
    ok("plan", "--out", str(project / "plan.json"), "--format", "json")
    ok("apply", str(project / "plan.json"))
    ok("plan", "--detailed-exitcode")
    ok("apply", "--auto-approve")
    for args in (("get", "workspaces"), ("get", "functions"), ("get", "functions", "--format", "json"),
                 ("tasks",), ("tasks", "--format", "json"), ("tasks", "storefront", "--format", "json"),
                 ("logs", "storefront"), ("logs", "storefront/hello", "--format", "json")):
        ok(*args)

    # Failures with error text: each must say what went wrong without quoting a credential.
    cloud.overlay(project, "wrongpassword", HELLO_CHANGED, registry=NO_RETRY)
    failed = cloud.faasops(project, "apply", "--auto-approve", environment="wrongpassword",
                           env={REGISTRY_PASSWORD_ENV: secrets.wrong_registry_password})
    _expect(failed, 1, "registry rejected the credentials for user ci-pusher")
    cloud.overlay(project, "wrongtoken", HELLO_CHANGED, deployer={"kubeconfig": str(cloud.wrong_kubeconfig), **NO_RETRY})
    _expect(cloud.faasops(project, "plan", environment="wrongtoken"), 1, "401")
    _expect(cloud.faasops(project, "apply", "--auto-approve", environment="wrongtoken"), 1, "401")
    cloud.overlay(project, "noregistry", HELLO_CHANGED, registry={"registry_url": closed_port_url(), **NO_RETRY})
    _expect(cloud.faasops(project, "apply", "--auto-approve", environment="noregistry"), 1, "127.0.0.1")
    cloud.overlay(project, "nostate", state={"endpoint_url": closed_port_url(), **NO_RETRY})
    _expect(cloud.faasops(project, "plan", environment="nostate"), 1, "127.0.0.1")
    cloud.overlay(project, "nologs", logs={"table": "missing-logs-table"})
    _expect(cloud.faasops(project, "logs", "storefront", environment="nologs"), 1, "missing-logs-table")
    ok("tasks", "--format", "json", "--limit", "200")
    return project


def _expect(run: Any, code: int, reason: str = "") -> Any:
    assert run.code == code, run
    assert "Traceback" not in run.err, run
    assert reason in run.output, f"expected {reason!r} in the error\n{run}"
    return run


def _assert_clean(secrets: Secrets, where: str, text: str) -> None:
    found = secrets.found_in(text)
    assert not found, f"{', '.join(found)} leaked into {where}"


# ------------------------------------------------------------------------------------- sinks


@pytest.mark.slow  # every command against a whole cloud setup
def test_no_secret_in_any_command_output(cloud: SecureCloud, secrets: Secrets, swept: Path) -> None:
    assert len(cloud.outputs) >= 20
    for command, output in cloud.outputs:
        _assert_clean(secrets, f"the output of `{command}`", output)


def test_no_secret_in_any_project_file_or_the_plan_file(secrets: Secrets, swept: Path) -> None:
    plan = json.loads((swept / "plan.json").read_text())
    assert plan["summary"]["add"] == 3
    checkout = next(c for c in plan["changes"] if c["address"] == "storefront/checkout")
    assert any(field["sensitive"] for field in checkout["fields"])
    files = [path for path in swept.rglob("*") if path.is_file()]
    assert len(files) > 5
    for path in files:
        _assert_clean(secrets, str(path.relative_to(swept)), path.read_bytes().decode("utf-8", "replace"))


def test_no_secret_in_the_dynamodb_state_or_logs_tables(cloud: SecureCloud, secrets: Secrets, swept: Path) -> None:
    dynamodb = cloud.client("dynamodb")
    for table in (STATE_TABLE, LOGS_TABLE):
        items, request = [], {"TableName": table}
        while True:
            page = dynamodb.scan(**request)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        assert items, table
        _assert_clean(secrets, f"the DynamoDB table {table}", json.dumps(items))
    states = [item for item in dynamodb.scan(TableName=STATE_TABLE)["Items"] if item.get("item_type", {}).get("S") == "task"]
    assert any(item["status"]["S"] == "failed" for item in states), "the failed runs recorded no task"


def test_no_secret_in_s3_objects_or_their_metadata(cloud: SecureCloud, secrets: Secrets, swept: Path) -> None:
    s3 = cloud.client("s3")
    objects = s3.list_objects_v2(Bucket=SOURCES_BUCKET)["Contents"]
    assert objects
    for obj in objects:
        head = s3.head_object(Bucket=SOURCES_BUCKET, Key=obj["Key"])
        tags = s3.get_object_tagging(Bucket=SOURCES_BUCKET, Key=obj["Key"])["TagSet"]
        _assert_clean(secrets, f"s3://{SOURCES_BUCKET}/{obj['Key']} metadata",
                      json.dumps([obj["Key"], head.get("Metadata"), tags], default=str))


def test_no_secret_in_task_messages_even_of_failed_steps(cloud: SecureCloud, secrets: Secrets, swept: Path) -> None:
    run = cloud.faasops(swept, "tasks", "--format", "json", "--limit", "500")
    tasks = json.loads(run.out)
    failed = [task for task in tasks if task["status"] == "failed"]
    assert failed, "expected the failed pushes to be recorded as failed tasks"
    assert any("rejected the credentials" in task["message"] for task in failed), failed
    _assert_clean(secrets, "task messages", run.out)


# ----------------------------------------------------------------- exceptions raised in process


# botocore's own DEBUG records print the signed request, session token included (SECURITY.md
# says so: never turn DEBUG on for botocore in CI). Everything else is swept at every level.
BOTOCORE_REQUEST_DUMPS = ("botocore.auth", "botocore.endpoint")


class _Records(logging.Handler):
    """Every log record at every level — faasops' own and its libraries' (urllib3, kubernetes,
    botocore but for its request dumps): someone debugging a CI job turns DEBUG on."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name in BOTOCORE_REQUEST_DUMPS and record.levelno < logging.INFO:
            return
        self.lines.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture
def log_records() -> Iterator[_Records]:
    handler, root = _Records(), logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _raised(action: Any) -> FaasopsError:
    with pytest.raises(FaasopsError) as caught:
        action()
    return caught.value


def test_no_secret_in_provider_exceptions_raised_in_process(cloud: SecureCloud, secrets: Secrets, swept: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           log_records: _Records) -> None:
    for name, value in {**cloud.env, REGISTRY_PASSWORD_ENV: secrets.wrong_registry_password}.items():
        monkeypatch.setenv(name, value)
    errors: dict[str, FaasopsError] = {}

    with Engine(load_project(swept, "wrongpassword")) as engine:
        function = next(f for f in engine.project.functions() if f.name == "hello")
        build = engine.providers.builder.build(function, snapshot_directory(function.source_dir))
        errors["push with a wrong registry password"] = _raised(
            lambda: engine.providers.registry.push(function, build, "2024-01-01T00:00:00Z"))
    with Engine(load_project(swept, "wrongtoken")) as engine:
        errors["observe with a wrong Kubernetes token"] = _raised(
            lambda: engine.providers.deployer.observe(engine.project, engine.project.workspaces))
        errors["deploy with a wrong Kubernetes token"] = _raised(
            lambda: engine.providers.deployer.ensure_workspace(engine.project, engine.project.workspaces[0]))
    with Engine(load_project(swept, "nostate")) as engine:
        errors["state read from an unreachable endpoint"] = _raised(engine.providers.state.read)
    with Engine(load_project(swept, "noregistry")) as engine:
        errors["push to an unreachable registry"] = _raised(
            lambda: engine.providers.registry.push(function, build, "2024-01-01T00:00:00Z"))

    assert "rejected the credentials" in str(errors["push with a wrong registry password"])
    assert "401" in str(errors["observe with a wrong Kubernetes token"])
    for what, error in errors.items():
        text = "".join(traceback.format_exception(error)) + repr(error.args) + repr(vars(error))
        _assert_clean(secrets, f"the exception of {what} (with its chain)", text)
    assert log_records.lines, "expected some log records"
    leaked = [line for line in log_records.lines if secrets.found_in(line)]
    assert not leaked, "secrets leaked into log records:\n" + "\n".join(line[:2000] for line in leaked[:5])
