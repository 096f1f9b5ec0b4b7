"""The moto server helper other AWS provider tests (ECR …) build on."""

from __future__ import annotations

import urllib.request

import pytest

from aws_support import start_moto_server
from testkit.moto import MotoServer, aws_env


def test_reset_wipes_every_service(moto: MotoServer) -> None:
    s3, ecr = moto.client("s3"), moto.client("ecr")
    s3.create_bucket(Bucket="some-bucket")
    ecr.create_repository(repositoryName="some/repo")
    moto.reset()
    assert s3.list_buckets()["Buckets"] == []
    assert ecr.describe_repositories()["repositories"] == []


def test_server_runs_on_a_free_port_and_stops_with_its_context() -> None:
    with MotoServer() as server:
        assert server.running and server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{server.url}/moto-api/data.json", timeout=5) as response:
            assert response.status == 200
    assert not server.running


def test_aws_env_gives_fake_credentials_and_a_region() -> None:
    env = aws_env()
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_DEFAULT_REGION"] == "us-east-1"


def test_missing_moto_server_skips_outside_ci_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="moto_server not found"):
        start_moto_server("/nonexistent/moto_server")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="moto_server not found"):
        start_moto_server("/nonexistent/moto_server")
