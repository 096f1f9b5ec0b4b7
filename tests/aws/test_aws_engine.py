"""The AWS providers as a project uses them: chosen in faas.yaml, loaded as plugins, driven by
the real CLI against moto."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli_support import copy_example, run_faasops
from aws_support import BUCKET, TABLE
from faasops.errors import ManifestError, ProviderError
from faasops.manifest import load_project
from faasops.plugin_manager import create_plugin_manager, create_provider
from faasops.plugins.aws import DynamoDBState, S3SourceStore


def aws_project(tmp_path: Path, state: dict[str, Any], sources: dict[str, Any] | None = None) -> Path:
    """examples/hello with DynamoDB state and S3 sources; building and deploying stay local."""
    project = copy_example("hello", tmp_path)
    manifest = yaml.safe_load((project / "faas.yaml").read_text())
    manifest["providers"] = {"state": {"type": "dynamodb", **state}}
    if sources is not None:
        manifest["providers"]["sources"] = {"type": "s3", **sources}
    (project / "faas.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return project


def test_manifest_options_reach_the_providers_through_the_plugin_manager(tmp_path: Path, moto: Any) -> None:
    root = aws_project(
        tmp_path,
        {"table": TABLE, "region": "eu-west-1", "endpoint_url": moto.url, "create_table": True, "lock_lease_seconds": 30},
        {"bucket": BUCKET, "prefix": "src/", "region": "eu-west-1", "endpoint_url": moto.url, "sse": "aws:kms",
         "kms_key_id": "alias/faasops", "create_bucket": True},
    )
    project = load_project(root)
    pm = create_plugin_manager()
    state = create_provider(pm, project, "state")
    sources = create_provider(pm, project, "sources")
    assert isinstance(state, DynamoDBState) and isinstance(sources, S3SourceStore)
    assert (state.project, state.table, state.region, state.lease_s, state.create_table) == ("hello", TABLE, "eu-west-1", 30.0, True)
    assert (sources.prefix, sources.sse, sources.kms_key_id) == ("src/", "aws:kms", "alias/faasops")
    state.close()


@pytest.mark.parametrize(("state", "error"), [
    ({}, "providers.state: missing required option 'table'"),
    ({"table": "t", "tabel": "x"}, "providers.state.tabel: unknown option 'tabel' (did you mean 'table'?)"),
    ({"table": "t", "create_table": "yes"}, "providers.state.create_table: expected true or false, got the string 'yes'"),
    ({"table": "t", "lock_lease_seconds": 0}, "providers.state.lock_lease_seconds: must be more than 0 (got 0)"),
])
def test_bad_state_options_are_refused_clearly(tmp_path: Path, state: dict[str, Any], error: str) -> None:
    project = load_project(aws_project(tmp_path, state))
    with pytest.raises(ProviderError) as refused:
        create_provider(create_plugin_manager(), project, "state")
    assert error in str(refused.value) and "hunter2" not in str(refused.value)


def test_aws_credentials_in_faas_yaml_are_refused_when_the_manifests_load(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as refused:
        load_project(aws_project(tmp_path, {"table": "t", "aws_secret_access_key": "hunter2-secret"}))
    assert "remove 'aws_secret_access_key'" in str(refused.value) and "hunter2" not in str(refused.value)


def test_bad_sse_is_refused(tmp_path: Path) -> None:
    project = load_project(aws_project(tmp_path, {"table": "t"}, {"bucket": "b", "sse": "rot13"}))
    with pytest.raises(ProviderError, match="providers.sources.sse: 'rot13' is not one of 'AES256', 'aws:kms'"):
        create_provider(create_plugin_manager(), project, "sources")


@pytest.mark.slow  # builds the hello component unless FAASOPS_BUILD_CACHE already has it
def test_apply_then_plan_records_state_in_dynamodb_and_sources_in_s3(tmp_path: Path, moto: Any,
                                                                    dynamodb: Any, s3: Any) -> None:
    project = aws_project(
        tmp_path,
        {"table": TABLE, "endpoint_url": moto.url, "create_table": True},
        {"bucket": BUCKET, "endpoint_url": moto.url, "create_bucket": True},
    )
    applied = run_faasops("-C", str(project), "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    assert "Apply complete!" in applied.out

    planned = run_faasops("-C", str(project), "plan", "--detailed-exitcode")
    assert planned.code == 0, planned.output

    items = {item["sk"]["S"]: item for item in dynamodb.query(
        TableName=TABLE, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "PROJECT#hello"}})["Items"]}
    assert set(items) == {"META#SERIAL", "WS#demo", "WS#demo#FN#hello"}
    spec = json.loads(items["WS#demo#FN#hello"]["spec"]["S"])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys == [f"sources/hello/{spec['source_hash'].removeprefix('sha256:')}.tar.gz"]  # the project's folder
    assert not (project / ".faasops" / "state.db").exists()
    assert not (project / ".faasops" / "sources").exists()

    tasks = run_faasops("-C", str(project), "tasks", "demo", "--format", "json")
    assert tasks.code == 0, tasks.output
    steps = {(t["function"], t["kind"], t["status"]) for t in json.loads(tasks.out)}
    assert ("hello", "upload", "completed") in steps and ("hello", "deploy", "completed") in steps


def test_unreachable_state_endpoint_is_a_one_line_cli_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAASOPSTEST12345")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-print-this-secret")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    project = aws_project(tmp_path, {"table": TABLE, "endpoint_url": f"http://127.0.0.1:{closed_port}", "max_attempts": 1})
    result = run_faasops("-C", str(project), "plan")
    assert result.code == 1
    assert result.err.strip().splitlines() == [result.err.strip()]
    assert result.err.startswith("Error: DynamoDB table") and "cannot reach" in result.err
    assert "Traceback" not in result.output
    assert "AKIAFAASOPSTEST12345" not in result.output and "do-not-print-this-secret" not in result.output


def test_missing_table_is_a_cli_error_naming_create_table(tmp_path: Path, moto: Any) -> None:
    project = aws_project(tmp_path, {"table": TABLE, "endpoint_url": moto.url})
    result = run_faasops("-C", str(project), "plan")
    assert result.code == 1 and "create_table: true" in result.err and "Traceback" not in result.err
