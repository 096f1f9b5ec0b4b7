"""The cloud example against real local services with real credentials to protect: moto
(DynamoDB, S3, ECR API), Debian's docker-registry with a password only the environment holds
(``password_env``), and the Kubernetes API emulator over TLS with a bearer token (kubectl sends
tokens over TLS only). Every output is kept, so a test can sweep it for planted secrets."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import yaml

from testkit.availability import kubectl_binary, unavailable
from testkit.kubeapi import KubeEmulator
from testkit.moto import MotoServer, MotoServerNotFound, aws_env
from testkit.registry import OciRegistry, RegistryUnavailable

from security_support import CliRun, run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REGION = "eu-west-1"
STATE_TABLE = "faasops-state"
LOGS_TABLE = "faasops-logs"
SOURCES_BUCKET = "acme-faasops-sources"
REGISTRY_USER = "ci-pusher"
REGISTRY_PASSWORD_ENV = "FAASOPS_SWEEP_REGISTRY_PASSWORD"


class Secrets:
    """Unique marker values, one per secret faasops handles or could come near."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:12]
        self.aws_secret_access_key = f"AwsSecretKeyMARKER{tag}"
        self.aws_session_token = f"AwsSessionTokenMARKER{tag}"
        self.registry_password = f"RegistryPasswordMARKER{tag}"
        self.kube_token = f"KubeBearerTokenMARKER{tag}"
        self.kube_secret_value = f"KubeSecretValueMARKER{tag}"
        self.wrong_registry_password = f"WrongRegistryPasswordMARKER{tag}"
        self.wrong_kube_token = f"WrongKubeTokenMARKER{tag}"

    def values(self) -> dict[str, str]:
        """Every marker, plus the encoded forms a leak could take (HTTP basic auth, base64)."""
        plain = {name: value for name, value in vars(self).items()}
        encoded = {
            "registry basic auth": base64.b64encode(f"{REGISTRY_USER}:{self.registry_password}".encode()).decode(),
            "wrong registry basic auth": base64.b64encode(
                f"{REGISTRY_USER}:{self.wrong_registry_password}".encode()).decode(),
            **{f"{name} (base64)": base64.b64encode(value.encode()).decode().rstrip("=") for name, value in plain.items()},
        }
        return {**plain, **encoded}

    def found_in(self, text: str) -> list[str]:
        return [name for name, value in self.values().items() if value in text]


class SecureCloud:
    """The services, the credentials they demand, and every output seen."""

    def __init__(self, root: Path, secrets: Secrets):
        self.root = root
        self.secrets = secrets
        self.outputs: list[tuple[str, str]] = []  # (what ran, what it printed)
        self.moto: MotoServer | None = None
        self.registry: OciRegistry | None = None
        self.kube: KubeEmulator | None = None

    def start(self) -> "SecureCloud":
        os.environ.update(aws_env())
        try:
            self.moto = MotoServer().start()
        except MotoServerNotFound as exc:
            unavailable(str(exc))
        # User AWS with the ECR token's password, for runs without a `password_env` override.
        token = self.moto.client("ecr", REGION).get_authorization_token()["authorizationData"][0]["authorizationToken"]
        ecr_password = base64.b64decode(token).decode().partition(":")[2]
        try:
            self.registry = OciRegistry({REGISTRY_USER: self.secrets.registry_password, "AWS": ecr_password})
        except RegistryUnavailable as exc:
            self.stop()
            unavailable(str(exc))
        self.kube = KubeEmulator(port=0, token=self.secrets.kube_token, tls=True).start()
        self.kubeconfig = self.kube.write_kubeconfig(self.root / "kube" / "config")
        wrong = yaml.safe_load(self.kubeconfig.read_text())
        wrong["users"][0]["user"]["token"] = self.secrets.wrong_kube_token
        self.wrong_kubeconfig = self.root / "kube" / "wrong-token-config"
        self.wrong_kubeconfig.write_text(yaml.safe_dump(wrong))
        return self

    def stop(self) -> None:
        for service in (self.kube, self.registry, self.moto):
            if service is not None:
                service.stop()

    # ------------------------------------------------------------------------------ environment

    @property
    def env(self) -> dict[str, str]:
        """What a CI job would export: AWS credentials, the registry password, the kubeconfig."""
        return {
            **aws_env(REGION),
            "AWS_SECRET_ACCESS_KEY": self.secrets.aws_secret_access_key,
            "AWS_SESSION_TOKEN": self.secrets.aws_session_token,
            "AWS_SECURITY_TOKEN": self.secrets.aws_session_token,
            REGISTRY_PASSWORD_ENV: self.secrets.registry_password,
            "KUBECONFIG": str(self.kubeconfig),
        }

    def providers(self, **changes: dict[str, object]) -> dict[str, object]:
        """The example's providers pointed at the local services (``changes`` merged per slot)."""
        assert self.moto is not None and self.registry is not None
        providers: dict[str, dict[str, object]] = {
            "state": {"endpoint_url": self.moto.url, "create_table": True},
            "sources": {"endpoint_url": self.moto.url, "create_bucket": True},
            "registry": {"endpoint_url": self.moto.url, "registry_url": self.registry.url,
                         "username": REGISTRY_USER, "password_env": REGISTRY_PASSWORD_ENV},
            "deployer": {"kubeconfig": str(self.kubeconfig)},
            # With its type: an override without one is ignored for the preset's (real AWS).
            "logs": {"type": "dynamodb", "table": LOGS_TABLE, "region": REGION, "endpoint_url": self.moto.url},
        }
        for slot, options in changes.items():
            providers[slot] = {**providers.get(slot, {}), **options}
        return providers

    def overlay(self, project: Path, environment: str = "local", extra: dict[str, object] | None = None,
                **changes: dict[str, object]) -> None:
        """``faas.<environment>.yaml``: the providers (with ``changes``) and ``extra`` top-level keys."""
        document = {"providers": self.providers(**changes), **(extra or {})}
        (project / f"faas.{environment}.yaml").write_text(yaml.safe_dump(document))

    def copy_example(self, dest: Path) -> Path:
        project = dest / "cloud"
        shutil.copytree(EXAMPLES / "cloud", project, ignore=shutil.ignore_patterns(".faasops", "__pycache__"))
        self.overlay(project)
        return project

    # ------------------------------------------------------------------------------ running

    def faasops(self, project: Path, *args: str, environment: str = "local", env: dict[str, str] | None = None) -> CliRun:
        run = run_cli(project, "-e", environment, *args, env={**self.env, **(env or {})}, timeout=300)
        self.outputs.append((f"faasops -e {environment} {' '.join(args)}", run.output))
        return run

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([kubectl_binary(), *args], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "KUBECONFIG": str(self.kubeconfig)})
        return result

    def client(self, service: str):  # noqa: ANN201 - a boto3 client
        assert self.moto is not None
        return self.moto.client(service, REGION)
