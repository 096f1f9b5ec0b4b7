"""examples/builder: the service config loads, the in-cluster manifests wire IRSA, the token
Secret and the config together; `faasops builder serve` refuses bad configs and missing tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from builder_support import TOKEN, TOKEN_ENV
from cli_support import EXAMPLES, run_faasops

from faasops.builder_service.config import ConfigError, load_config

EXAMPLE = EXAMPLES / "builder"


def test_example_config_selects_dynamodb_tasks_ecr_pushes_and_kubernetes_deploys() -> None:
    config = load_config(EXAMPLE / "builder.yaml")
    providers = config.provider_configs()
    assert {slot: p.type for slot, p in providers.items()} == {
        "state": "dynamodb", "builder": "componentize-py", "registry": "ecr", "scaffolder": "spinkube",
        "deployer": "kubernetes"}
    assert config.auth.token_env == "FAASOPS_BUILDER_TOKEN"
    assert config.data_dir == Path("/var/lib/faasops-builder")


def test_example_deployment_runs_the_service_with_irsa_and_the_token_from_a_secret() -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all((EXAMPLE / "deployment.yaml").read_text())}
    account, deployment, service = docs["ServiceAccount"], docs["Deployment"], docs["Service"]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    pod = deployment["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
    [container] = pod["spec"]["containers"]
    assert container["args"][:5] == ["faasops", "builder", "serve", "--config", "/etc/faasops-builder/builder.yaml"]
    token = next(e for e in container["env"] if e["name"] == "FAASOPS_BUILDER_TOKEN")
    assert "secretKeyRef" in token["valueFrom"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert docs["ClusterRoleBinding"]["subjects"][0]["name"] == account["metadata"]["name"]


@pytest.mark.parametrize(("config", "env", "message"), [
    ({"providers": {"state": {"type": "local"}}}, {TOKEN_ENV: ""},
     f"needs its bearer token in the environment variable {TOKEN_ENV} (unset)"),
    ({"providers": {"state": {"type": "local"}}}, {TOKEN_ENV: "short"}, "shorter than 16 characters"),
    ({"auth": {"token": TOKEN}, "providers": {"state": {"type": "local"}}}, {}, "never write the token into the config file"),
    ({"providers": {"registry": {"type": "ecr"}}}, {}, "`state` is required"),
    ({"providers": {"state": {"type": "local"}, "builder": {"type": "nope"}}}, {}, "no installed plugin provides builder type 'nope'"),
])
def test_serve_refuses_to_start_with_a_bad_config_or_without_a_token(tmp_path: Path, config: dict, env: dict[str, str],
                                                                     message: str) -> None:
    path = tmp_path / "builder.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "auth": {"token_env": TOKEN_ENV}, **config}))
    result = run_faasops("builder", "serve", "--config", str(path), "--port", "0", env={TOKEN_ENV: TOKEN, **env}, timeout=60)
    assert result.code == 1, result.output
    assert message in result.err
    assert "Traceback" not in result.err and TOKEN not in result.output


def test_a_missing_config_file_is_named() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Path("/nonexistent/builder.yaml"))
