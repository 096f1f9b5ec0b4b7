"""Amazon ECR — and any OCI distribution registry — as the faasops registry.

Two provider types, one push path (the `OCI Distribution API
<https://github.com/opencontainers/distribution-spec/blob/main/spec.md>`_ over HTTP(S)):

``ecr``
    Credentials are **IRSA-first**: boto3's default chain (in a pod, the IRSA web-identity
    variables ``AWS_ROLE_ARN`` / ``AWS_WEB_IDENTITY_TOKEN_FILE`` just work; in CI, whatever the
    job configured) → ``ecr:GetAuthorizationToken`` → basic auth ``AWS:<token>`` against the
    token's ``proxyEndpoint``. The token is cached for its lifetime (less a margin) and renewed
    once when the registry rejects it. Repositories are created when missing
    (``ecr:DescribeRepositories``, then ``ecr:CreateRepository``).
``oci``
    Any OCI distribution registry at ``registry_url``, anonymous or with ``username`` and the
    password in the environment variable ``password_env``.

Options (``providers.registry`` in ``faas.yaml``):

========================  ======================================================================
``registry_url``          ``oci``: required. ``ecr``: replaces the token's ``proxyEndpoint``
                          (credentials still come from ECR), e.g. ``http://127.0.0.1:PORT``.
``username``              user for ``password_env`` (default ``AWS``; anonymous for ``oci``
                          without ``password_env``).
``password_env``          name of an environment variable holding the password. ``ecr``: an
                          override of the ECR token. A password is never read from faas.yaml.
``repository_prefix``     default ``faasops/``; repository ``<prefix><project>/<ws>/<fn>``,
                          lower-cased.
``tag``                   tag pushed besides the digest (default: the first 16 hex digits of
                          the build key; ``""`` for none).
``insecure``              allow plain ``http://`` (always allowed for 127.0.0.1/localhost).
``token_realm_hosts``     hosts (``host`` or ``host:port``) besides the registry itself that may
                          receive its credentials as the token service of a ``Bearer realm=…``
                          challenge (default none; see Auth below).
``ca_bundle``             CA file for HTTPS (default: certifi's, else the system's).
``chunk_size``            bytes per ``PATCH`` for chunked blob uploads; 0 (default) uploads
                          each blob in one streamed ``PUT``.
``timeout_seconds``       per-request read timeout (default 300); ``connect_timeout_seconds``
                          (default 10).
``max_attempts``          attempts per registry request or blob upload, the first included
                          (default 5; 1 turns retries off). ``ecr``: also the ECR API's botocore
                          standard-mode ``max_attempts``.
``retry_max_seconds``     time budget for retrying one request or upload (default 60).
``region``                ``ecr``: AWS region (default: boto3's chain, then ``AWS_REGION``).
``endpoint_url``          ``ecr``: ECR API endpoint (default: boto3's, incl. ``AWS_ENDPOINT_URL``).
``registry_id``           ``ecr``: account id of the registry (default: the caller's).
``create_repositories``   ``ecr``: create missing repositories (default true).
``image_tag_mutability``  ``ecr``: ``MUTABLE`` (default) or ``IMMUTABLE`` for new repositories.
``scan_on_push``          ``ecr``: scan-on-push for new repositories (default false).
========================  ======================================================================

Push, per function: assemble the Spin artifact (:func:`faasops.oci.function_artifact`, with the
pinned ``created``, so equal builds give equal digests) → ``HEAD`` the manifest by digest: if the
registry has it, nothing is uploaded (``Artifact.pushed`` is False; the tag is moved only if it
points elsewhere). Otherwise each blob is ``HEAD``-ed and skipped when present; a missing blob is
mounted from another repository of this registry that has it (known from this run, or guessed:
a function built from the same source directory) and else uploaded, streamed from its file;
then the manifest is ``PUT`` by digest and under the tag. Concurrent pushes of one blob wait for
the first upload and mount from it.

Retries (:mod:`faasops.retry`: exponential backoff, full jitter, ``Retry-After`` honoured and
capped, bounded by ``max_attempts`` and ``retry_max_seconds``): connection errors, dropped
connections, timeouts, 429 and 500/502/503/504 are retried for the idempotent requests — ``HEAD``
of blobs and manifests, token ``GET``, ``PUT`` of a manifest (by digest or tag: putting it again
changes nothing). A blob upload session (``POST`` → ``PATCH``… → ``PUT``) is not idempotent, so its
requests are not retried one by one: a transient failure anywhere in it first ``HEAD``s the blob
(the final ``PUT`` may have landed with only its answer lost) and else restarts the upload with a
new session. 400/401/403/404 answers are never retried. ``calls["registry.retries"]`` counts
retries, ``calls["blob.upload restarted"]`` restarted sessions.

Auth: basic credentials are sent pre-emptively (ECR and htpasswd registries answer ``Basic``);
a ``WWW-Authenticate: Bearer realm=…`` challenge switches to the token flow (token per scope set,
cached for ``expires_in``). Passwords and tokens never appear in messages, logs or exceptions.

The credentials go to the token service only when the realm is on the registry's own origin
(scheme, host and port) or its ``host[:port]`` is listed in ``token_realm_hosts``. docker and
containerd send them to whatever realm the registry names; faasops is stricter on purpose: the
challenge is data from the network, so a compromised or spoofed registry (or anything between
faasops and it on plain http) could otherwise collect the registry password — often a long-lived
CI credential — by naming a realm of its own. A realm elsewhere (Docker Hub's ``auth.docker.io``,
GitLab's ``gitlab.com/jwt/auth``) therefore has to be trusted explicitly; until it is, a push with
credentials fails with a message naming the realm's host, and one without credentials fetches its
token anonymously, as before.

Every request is counted in :attr:`DistributionRegistry.calls` (``"registry.HEAD blob"``,
``"ecr.GetAuthorizationToken"`` …) with outcomes (``"blob.uploaded"``, ``"blob.skipped"``,
``"blob.mounted"``, ``"manifest.pushed"``, ``"manifest.present"``).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any
from urllib.parse import SplitResult, quote, urlencode, urljoin, urlsplit

import urllib3

from faasops.errors import ProviderError
from faasops.hookspecs import hookimpl
from faasops.model import Function, Project, ProviderConfig
from faasops.names import repository_name
from faasops.oci import MANIFEST_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE, Blob, function_artifact
from faasops.providers import ActualState, Artifact, BuildResult, Garbage, Retained, StoredItem
from faasops.retry import RETRYABLE_STATUS, Attempts, RetryPolicy, TransientError, parse_retry_after

log = logging.getLogger(__name__)

TYPE_ECR = "ecr"
TYPE_OCI = "oci"
DEFAULT_REPOSITORY_PREFIX = "faasops/"
DEFAULT_USERNAME = "AWS"
FUNCTION_ANNOTATION = "dev.faasops.function"
DEFAULT_TIMEOUT_S = 300.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0
# Renew an ECR token this long before it expires (a push must not start on a dying token).
TOKEN_REFRESH_MARGIN_S = 300.0
# When expiresAt is already past on arrival (clock skew, or an emulator's fixed date), trust the
# token this long; a rejected token is renewed anyway.
FALLBACK_TOKEN_TTL_S = 3600.0
# distribution's token spec: expires_in defaults to 60 s.
BEARER_DEFAULT_TTL_S = 60.0
_UPLOAD_BLOCK = 1024 * 1024
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# ECR's repository name rule (also valid for the distribution spec).
_REPOSITORY = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_AUTH_PARAM = re.compile(r'([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')

_TEXT = {"type": "string", "minLength": 1}
_COMMON_OPTIONS: dict[str, dict[str, Any]] = {
    "registry_url": {**_TEXT, "description": "the registry's base URL (oci: required; ecr: replaces the token's endpoint)"},
    "username": {"type": ["string", "integer"], "description": "user for password_env (default AWS)"},
    "password_env": {"type": "string", "pattern": f"^{_ENV_NAME.pattern}$", "writeOnly": True,
                     "patternErrorMessage": "the name of an environment variable",
                     "description": "environment variable holding the password"},
    "repository_prefix": {"type": "string", "description": f"repository name prefix (default {DEFAULT_REPOSITORY_PREFIX})"},
    "tag": {"type": ["string", "integer"], "description": "tag pushed besides the digest (default: from the build "
            "key; \"\" for none)"},
    "insecure": {"type": "boolean", "default": False, "description": "allow plain http://"},
    "ca_bundle": {**_TEXT, "description": "CA file for HTTPS"},
    "chunk_size": {"type": "integer", "minimum": 0, "default": 0, "description": "bytes per PATCH (0: one PUT)"},
    "timeout_seconds": {"type": "number", "minimum": 1, "default": DEFAULT_TIMEOUT_S,
                        "description": "per-request read timeout"},
    "connect_timeout_seconds": {"type": "number", "minimum": 0.1, "default": DEFAULT_CONNECT_TIMEOUT_S,
                                "description": "connect timeout"},
    "max_attempts": {"type": "integer", "minimum": 1, "description": "attempts per request or upload (default 5)"},
    "retry_max_seconds": {"type": "number", "exclusiveMinimum": 0,
                          "description": "time budget for retrying one request or upload (default 60)"},
    "token_realm_hosts": {"type": "array", "items": {"type": "string"},
                          "description": "other hosts that may receive the credentials as a Bearer token service"},
}
OCI_OPTIONS_SCHEMA: dict[str, Any] = {"type": "object", "properties": _COMMON_OPTIONS, "required": ["registry_url"]}
ECR_OPTIONS_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    **_COMMON_OPTIONS,
    "region": {**_TEXT, "description": "AWS region (default: boto3's chain)"},
    "endpoint_url": {**_TEXT, "description": "ECR API endpoint (default: boto3's)"},
    "registry_id": {"type": ["string", "integer"], "description": "account id of the registry (default: the caller's)"},
    "create_repositories": {"type": "boolean", "default": True, "description": "create missing repositories"},
    "image_tag_mutability": {**_TEXT, "description": "MUTABLE (default) or IMMUTABLE for new repositories"},
    "scan_on_push": {"type": "boolean", "default": False, "description": "scan-on-push for new repositories"},
}}
_ACCESS_DENIED = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})
_BAD_AWS_CREDENTIALS = frozenset(
    {"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
     "InvalidClientTokenId", "SignatureDoesNotMatch"}
)


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryOptions:
    """The validated options of an ``ecr`` or ``oci`` registry slot (see the module docstring)."""

    type: str
    registry_url: str | None = None
    username: str | None = None
    password_env: str | None = None
    repository_prefix: str = DEFAULT_REPOSITORY_PREFIX
    tag: str | None = None  # None: derived from the build key; "": no tag
    insecure: bool = False
    ca_bundle: str | None = None
    chunk_size: int = 0
    timeout_s: float = DEFAULT_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    region: str | None = None
    endpoint_url: str | None = None
    registry_id: str | None = None
    create_repositories: bool = True
    image_tag_mutability: str = "MUTABLE"
    scan_on_push: bool = False
    token_realm_hosts: frozenset[tuple[str, int | None]] = frozenset()  # (host, port; None: the default)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def parse(cls, config: ProviderConfig) -> RegistryOptions:
        opts = dict(config.options)
        # Names and types are checked against ECR_OPTIONS_SCHEMA / OCI_OPTIONS_SCHEMA by the plugin
        # manager; what follows is what a schema can't say.
        where = f"providers.{config.slot} ({config.type})"

        def text(name: str) -> str | None:
            value = opts.get(name)
            if value is None:
                return None
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise ProviderError(f"{where}: {name} must be a string")
            return str(value)

        def flag(name: str, default: bool) -> bool:
            value = opts.get(name, default)
            if not isinstance(value, bool):
                raise ProviderError(f"{where}: {name} must be true or false")
            return value

        def number(name: str, default: float, minimum: float) -> float:
            value = opts.get(name, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
                raise ProviderError(f"{where}: {name} must be a number ≥ {minimum:g}")
            return value

        password_env = text("password_env")
        if password_env is not None and not _ENV_NAME.fullmatch(password_env):
            # Not echoed: a password pasted here by mistake must not reach the output.
            raise ProviderError(f"{where}: password_env must be the name of an environment variable")
        tag = text("tag")
        if tag and not _TAG.fullmatch(tag):
            raise ProviderError(f"{where}: tag {tag!r} is not a valid OCI tag")
        mutability = (text("image_tag_mutability") or "MUTABLE").upper()
        if mutability not in ("MUTABLE", "IMMUTABLE"):
            raise ProviderError(f"{where}: image_tag_mutability must be MUTABLE or IMMUTABLE")
        realm_hosts = opts.get("token_realm_hosts", [])
        if not isinstance(realm_hosts, list) or not all(isinstance(h, str) for h in realm_hosts):
            raise ProviderError(f"{where}: token_realm_hosts must be a list of host names (host or host:port)")
        registry_url = text("registry_url")
        if config.type == TYPE_OCI and not registry_url:
            raise ProviderError(f"{where}: registry_url is required")
        return cls(
            type=config.type,
            registry_url=registry_url,
            username=text("username"),
            password_env=password_env,
            repository_prefix=(text("repository_prefix") or "") if "repository_prefix" in opts else DEFAULT_REPOSITORY_PREFIX,
            tag=tag,
            insecure=flag("insecure", False),
            ca_bundle=text("ca_bundle"),
            chunk_size=int(number("chunk_size", 0, 0)),
            timeout_s=float(number("timeout_seconds", DEFAULT_TIMEOUT_S, 1)),
            connect_timeout_s=float(number("connect_timeout_seconds", DEFAULT_CONNECT_TIMEOUT_S, 0.1)),
            region=text("region"),
            endpoint_url=text("endpoint_url"),
            # YAML reads an unquoted account id as a number; account ids have 12 digits.
            registry_id=str(opts["registry_id"]).zfill(12) if isinstance(opts.get("registry_id"), int) else text("registry_id"),
            create_repositories=flag("create_repositories", True),
            image_tag_mutability=mutability,
            scan_on_push=flag("scan_on_push", False),
            token_realm_hosts=frozenset(_realm_host(entry, where) for entry in realm_hosts),
            retry=RetryPolicy.from_options(opts, where),
        )


def _realm_host(entry: str, where: str) -> tuple[str, int | None]:
    """A ``token_realm_hosts`` entry (``host`` or ``host:port``) as (lower-cased host, port)."""
    try:
        parts = urlsplit("//" + entry.strip())
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or not parts.hostname or parts.path or parts.query or parts.username or "//" in entry:
        raise ProviderError(f"{where}: token_realm_hosts entry {entry!r} is not a host or host:port")
    return parts.hostname.lower(), port


# --------------------------------------------------------------------------------------------
# Credentials
# --------------------------------------------------------------------------------------------


class CallCounter(Counter):
    """A :class:`collections.Counter` of API calls that apply's worker threads can bump."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def add(self, name: str) -> None:
        with self._lock:
            self[name] += 1


@dataclass(frozen=True)
class Login:
    """Registry credentials. The password never shows in ``repr``."""

    username: str
    password: str = field(repr=False)
    origin: str = ""  # how it was obtained, for error messages ("$VAR", "ECR token")

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


class LoginSource:
    """Where a registry client gets its credentials. The base class is anonymous."""

    def current(self) -> Login | None:
        return None

    def renew(self, stale: Login) -> bool:
        """The registry rejected ``stale``: drop it if it can be renewed; True to retry."""
        return False


class EnvironmentLogin(LoginSource):
    """``username`` with the password read (when first needed) from environment variable ``env``."""

    def __init__(self, username: str, env: str):
        self.username = username
        self.env = env

    def current(self) -> Login:
        password = os.environ.get(self.env)
        if not password:
            raise ProviderError(f"password_env names ${self.env}, which is not set (or empty)")
        return Login(self.username, password, f"password from ${self.env}")


@dataclass(frozen=True)
class EcrAuthorization:
    login: Login
    proxy_endpoint: str
    renew_at: float  # time.monotonic()


class EcrApi:
    """The ECR control-plane calls (``GetAuthorizationToken``, ``DescribeRepositories``,
    ``CreateRepository``) through boto3's default credential chain — IRSA web identity in a pod.
    Thread-safe; the authorization token is cached until shortly before it expires."""

    def __init__(self, options: RegistryOptions, calls: CallCounter):
        self.options = options
        self.calls = calls
        self._lock = threading.Lock()
        self._client: Any = None
        self._session: Any = None
        self._authorization: EcrAuthorization | None = None
        self._repositories: set[str] = set()
        # Serialises token fetches: ten threads starting a push at once make one call, not ten.
        self._fetch = threading.Lock()

    # ---------------------------------------------------------------------------- boto3

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                # Imported on first use: every faasops command loads this plugin, few push.
                import boto3
                from botocore.config import Config

                session = boto3.session.Session(region_name=self.options.region)
                region = session.region_name or os.environ.get("AWS_REGION")
                if not region:
                    raise ProviderError(
                        "ECR: no AWS region; set providers.registry.region or AWS_REGION / AWS_DEFAULT_REGION"
                    )
                _redact_botocore_logs()
                self._session = session
                self._client = session.client(
                    "ecr",
                    region_name=region,
                    endpoint_url=self.options.endpoint_url,
                    config=Config(
                        # total_max_attempts: botocore's `max_attempts` here would count retries.
                        retries={"mode": "standard", "total_max_attempts": self.options.retry.max_attempts},
                        connect_timeout=self.options.connect_timeout_s,
                        user_agent_extra="faasops",
                    ),
                )
            return self._client

    def credential_method(self) -> str | None:
        """How boto3 found AWS credentials (``assume-role-with-web-identity`` under IRSA, ``env`` …)."""
        self.client()
        credentials = self._session.get_credentials()
        return getattr(credentials, "method", None)

    def call(self, operation: str, tolerate: Iterable[str] = (), **kwargs: Any) -> dict[str, Any]:
        """Call ECR ``operation``; AWS errors become :class:`ProviderError` naming the missing
        permission, except the codes in ``tolerate``, which re-raise the ``ClientError``."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
            PartialCredentialsError,
        )

        client = self.client()
        self.calls.add(f"ecr.{operation}")
        method = getattr(client, re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())
        try:
            return method(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "Unknown")
            if code in set(tolerate):
                raise
            message = _aws_message(error.get("Message", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code.isdigit():  # an XML error body where botocore expected JSON (proxies, emulators)
                code = _xml_field(error.get("Message", ""), "Code") or code
            failed = getattr(exc, "operation_name", operation) or operation
            if failed != operation:  # the credential chain's own call, e.g. sts:AssumeRoleWithWebIdentity
                raise ProviderError(f"AWS credentials for ECR could not be obtained: sts:{failed} failed ({code}): {message}") from None
            if code in _ACCESS_DENIED or (status == 403 and code not in _BAD_AWS_CREDENTIALS):
                raise ProviderError(
                    f"ECR denied ecr:{operation}: the AWS identity needs IAM permission ecr:{operation} ({code}: {message})"
                ) from None
            if code in _BAD_AWS_CREDENTIALS:
                raise ProviderError(f"ECR rejected the AWS credentials for ecr:{operation} ({code}): {message}") from None
            raise ProviderError(f"ECR {operation} failed ({code}): {message}") from None
        except (NoCredentialsError, PartialCredentialsError):
            raise ProviderError(
                "ECR: no AWS credentials found. In a pod, use IRSA (annotate the service account with "
                "eks.amazonaws.com/role-arn); elsewhere configure AWS credentials (AWS_PROFILE, "
                "AWS_ACCESS_KEY_ID …), or set password_env to override the registry password"
            ) from None
        except EndpointConnectionError as exc:
            raise ProviderError(f"ECR API is unreachable at {exc.kwargs.get('endpoint_url', '?')}") from None
        except NoRegionError:
            raise ProviderError("ECR: no AWS region; set providers.registry.region or AWS_REGION") from None
        except BotoCoreError as exc:
            raise ProviderError(f"ECR {operation} failed: {_one_line(str(exc))}") from None

    # ------------------------------------------------------------------------ authorization

    def authorization(self) -> EcrAuthorization:
        """The cached ECR token (``AWS:<password>``) and registry endpoint, renewed near expiry."""
        with self._lock:
            cached = self._authorization
        if cached is not None and time.monotonic() < cached.renew_at:
            return cached
        with self._fetch:
            with self._lock:
                cached = self._authorization
            if cached is not None and time.monotonic() < cached.renew_at:
                return cached
            kwargs = {"registryIds": [self.options.registry_id]} if self.options.registry_id else {}
            data = self.call("GetAuthorizationToken", **kwargs)["authorizationData"][0]
            try:
                username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
            except (ValueError, KeyError):
                raise ProviderError("ECR GetAuthorizationToken returned a token that is not base64 user:password") from None
            if not password:
                raise ProviderError("ECR GetAuthorizationToken returned a token without a password")
            lifetime = FALLBACK_TOKEN_TTL_S
            expires_at = data.get("expiresAt")
            if isinstance(expires_at, datetime):
                remaining = (expires_at - datetime.now(timezone.utc)).total_seconds() - TOKEN_REFRESH_MARGIN_S
                if remaining > 0:
                    lifetime = remaining
                else:
                    log.debug("ECR token expiry %s is not in the future; trusting it for %ss", expires_at, FALLBACK_TOKEN_TTL_S)
            fresh = EcrAuthorization(
                Login(username, password, "ECR authorization token"),
                data.get("proxyEndpoint", ""),
                time.monotonic() + lifetime,
            )
            with self._lock:
                self._authorization = fresh
            return fresh

    def invalidate(self, stale: Login) -> bool:
        with self._lock:
            if self._authorization is not None and self._authorization.login == stale:
                self._authorization = None
        return True

    # ------------------------------------------------------------------------- repositories

    def ensure_repository(self, name: str) -> None:
        """Create repository ``name`` unless it exists (checked once per run)."""
        with self._lock:
            if name in self._repositories:
                return
        from botocore.exceptions import ClientError

        ids = {"registryId": self.options.registry_id} if self.options.registry_id else {}
        try:
            self.call("DescribeRepositories", tolerate=("RepositoryNotFoundException",), repositoryNames=[name], **ids)
        except ClientError:
            try:
                self.call(
                    "CreateRepository",
                    tolerate=("RepositoryAlreadyExistsException",),
                    repositoryName=name,
                    imageTagMutability=self.options.image_tag_mutability,
                    imageScanningConfiguration={"scanOnPush": self.options.scan_on_push},
                    tags=[{"Key": "managed-by", "Value": "faasops"}],
                    **ids,
                )
                log.info("created ECR repository %s", name)
            except ClientError:
                pass  # created meanwhile by a concurrent apply
        with self._lock:
            self._repositories.add(name)


_TOKEN_FIELD = re.compile(r"""(['"]authorizationToken['"]\s*:\s*['"])[^'"]*""")


class _RedactEcrTokens(logging.Filter):
    """botocore logs response bodies at DEBUG, ECR authorization tokens included: blank them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "authorizationToken" in message:
            record.msg, record.args = _TOKEN_FIELD.sub(r"\1***", message), ()
        return True


def _redact_botocore_logs() -> None:
    logger = logging.getLogger("botocore.parsers")
    if not any(isinstance(f, _RedactEcrTokens) for f in logger.filters):
        logger.addFilter(_RedactEcrTokens())


class EcrLogin(LoginSource):
    """The ECR authorization token as registry credentials."""

    def __init__(self, ecr: EcrApi):
        self.ecr = ecr

    def current(self) -> Login:
        return self.ecr.authorization().login

    def renew(self, stale: Login) -> bool:
        return self.ecr.invalidate(stale)


# --------------------------------------------------------------------------------------------
# OCI Distribution API client
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" | "bearer" | ""
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge:
    """``WWW-Authenticate: Bearer realm="…",service="…",scope="…"`` → scheme and parameters."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _AUTH_PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


def merge_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Token scopes with the actions of one resource merged (``repository:r:pull`` and
    ``repository:r:pull,push`` → ``repository:r:pull,push``), so one token serves them all."""
    actions: dict[str, set[str]] = {}
    for scope in scopes:
        resource, _, wanted = scope.rpartition(":")
        if resource:
            actions.setdefault(resource, set()).update(a for a in wanted.split(",") if a)
    return frozenset(f"{resource}:{','.join(sorted(acts))}" for resource, acts in actions.items())


def _xml_field(text: str, name: str) -> str | None:
    match = re.search(rf"<{name}>(.*?)</{name}>", text, re.S)
    return match.group(1).strip() if match else None


def _aws_message(text: str) -> str:
    """An AWS error message on one line (the ``<Message>`` of an XML body, if it is one)."""
    return _one_line(_xml_field(text, "Message") or text)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _effective_port(parts: SplitResult) -> int | None:
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def _describe_network_error(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return "cannot resolve the host name"
    # NewConnectionError subclasses ConnectTimeoutError: look for the OS error (refused…) first.
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    ):
        return "timed out connecting"
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
        return "timed out waiting for a response"
    if isinstance(reason, urllib3.exceptions.SSLError):
        return f"TLS error ({_one_line(str(reason.args[0] if reason.args else reason), 160)})"
    cause: BaseException | None = reason
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    text = str(reason)
    return _one_line(text.split(": ", 1)[-1] if ": " in text else text, 160)


class DistributionClient:
    """A small, thread-safe OCI Distribution API client (push side) over urllib3."""

    def __init__(self, base_url: str, logins: LoginSource, calls: CallCounter, options: RegistryOptions):
        parts = urlsplit(base_url if "://" in base_url else "https://" + base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProviderError(f"registry_url {base_url!r} is not an http(s) URL")
        if parts.scheme == "http" and not options.insecure and parts.hostname not in _LOCAL_HOSTS:
            raise ProviderError(
                f"refusing plain http to registry {parts.netloc}; use https or set insecure: true"
            )
        self.base_url = f"{parts.scheme}://{parts.netloc}"
        self.netloc = parts.netloc
        self.host = parts.netloc  # how image references name the registry
        self.logins = logins
        self.calls = calls
        self.chunk_size = options.chunk_size
        self.insecure = options.insecure
        self.realm_hosts = options.token_realm_hosts
        self.retry = options.retry
        tls: dict[str, Any] = {}
        ca_bundle = options.ca_bundle or _default_ca_bundle()
        if parts.scheme == "https" and ca_bundle:
            tls["ca_certs"] = ca_bundle
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=16,
            blocksize=_UPLOAD_BLOCK,
            timeout=urllib3.Timeout(connect=options.connect_timeout_s, read=options.timeout_s),
            # Retries are ours (faasops.retry), and only for idempotent requests.
            retries=False,
            **tls,
        )
        self._lock = threading.Lock()
        self._bearer: Challenge | None = None
        self._tokens: dict[frozenset[str], tuple[str, float]] = {}

    # ------------------------------------------------------------------------------- auth

    def _authorization(self, url: str, scopes: frozenset[str]) -> str | None:
        if urlsplit(url).netloc != self.netloc:
            return None  # never hand credentials to another host (e.g. a storage redirect)
        with self._lock:
            bearer = self._bearer
        if bearer is not None:
            return "Bearer " + self._bearer_token(bearer, scopes)
        login = self.logins.current()
        return login.basic() if login else None

    def _bearer_token(self, challenge: Challenge, scopes: frozenset[str]) -> str:
        with self._lock:
            cached = self._tokens.get(scopes)
        if cached and time.monotonic() < cached[1]:
            return cached[0]
        realm = challenge.params.get("realm", "")
        realm_parts = urlsplit(realm)
        if realm_parts.scheme not in ("http", "https") or (
            realm_parts.scheme == "http" and not self.insecure and realm_parts.hostname not in _LOCAL_HOSTS
        ):
            raise ProviderError(f"registry {self.host} sent an unusable token realm {realm_parts.netloc or realm!r}")
        query: list[tuple[str, str]] = []
        if challenge.params.get("service"):
            query.append(("service", challenge.params["service"]))
        query += [("scope", s) for s in sorted(scopes)]
        url = realm + ("&" if "?" in realm else "?") + urlencode(query)
        login = self.logins.current()
        if login is not None and not self._may_receive_credentials(realm_parts):
            realm_host = realm_parts.netloc.rpartition("@")[2]
            raise ProviderError(
                f"registry {self.host} asks for a token from {realm_host}, another host; faasops sends the "
                f"registry's credentials only to the registry itself. If {realm_host} is the registry's "
                "token service, list it under token_realm_hosts in providers.registry"
            )
        headers = {"Authorization": login.basic()} if login else {}
        response = self._http("GET", url, "token", headers, None)
        if response.status == 401 and login is not None:
            if self.logins.renew(login):
                login = self.logins.current()
                headers = {"Authorization": login.basic()} if login else {}
                response = self._http("GET", url, "token", headers, None)
        if response.status in (401, 403):
            raise self._rejected(login, f"token service {realm_parts.netloc}")
        if response.status != 200:
            raise ProviderError(f"registry token service {realm_parts.netloc} answered HTTP {response.status}")
        try:
            body = json.loads(response.data)
            token = body.get("token") or body.get("access_token")
            ttl = float(body.get("expires_in") or BEARER_DEFAULT_TTL_S)
        except (ValueError, AttributeError, TypeError):
            token, ttl = None, 0.0
        if not token:
            raise ProviderError(f"registry token service {realm_parts.netloc} returned no token")
        with self._lock:
            self._tokens[scopes] = (token, time.monotonic() + max(ttl - 10, 5))
        return token

    def _may_receive_credentials(self, realm: SplitResult) -> bool:
        """Whether a token realm may see the registry's credentials: the registry's own origin,
        or a host of ``token_realm_hosts`` (on the port it names, else the scheme's default)."""
        own = urlsplit(self.base_url)
        host = (realm.hostname or "").lower()
        if realm.scheme == own.scheme and host == (own.hostname or "").lower() \
                and _effective_port(realm) == _effective_port(own):
            return True
        default = {"http": 80, "https": 443}[realm.scheme]
        return any(host == allowed and (port or default) == _effective_port(realm) for allowed, port in self.realm_hosts)

    def _rejected(self, login: Login | None, via: str = "") -> ProviderError:
        if login is None:
            return ProviderError(f"registry {self.host} requires credentials; set username and password_env for it")
        notes = "; ".join(n for n in (login.origin, via) if n)
        return ProviderError(
            f"registry rejected the credentials for user {login.username} at {self.host}" + (f" ({notes})" if notes else "")
        )

    # ---------------------------------------------------------------------------- requests

    def _http(self, method: str, url: str, label: str, headers: dict[str, str], body: Any,
              idempotent: bool = True) -> urllib3.BaseHTTPResponse:
        """Send one request. An ``idempotent`` one is retried on transient failures (network
        errors, 429, 5xx) within the retry budget. A network failure that is not retried raises
        :class:`TransientError`; a retryable status that is not retried is returned, for the
        caller's :meth:`failure` to turn into a :class:`TransientError`."""
        attempts = self.retry.start()
        while True:
            self.calls.add(f"registry.{method} {label}")
            if body is not None and hasattr(body, "seek"):
                body.seek(0)
            try:
                response = self._pool.request(method, url, body=body, headers=headers, redirect=False)
            except urllib3.exceptions.HTTPError as exc:
                if idempotent and self._retry(attempts, None):
                    continue
                parts = urlsplit(url)
                raise TransientError(
                    f"registry {parts.scheme}://{parts.netloc} is unreachable ({method} {label}): {_describe_network_error(exc)}"
                ) from None
            if idempotent and response.status in RETRYABLE_STATUS \
                    and self._retry(attempts, parse_retry_after(response.headers.get("Retry-After"))):
                continue
            return response

    def _retry(self, attempts: Attempts, retry_after: float | None) -> bool:
        """Wait for another attempt if the budget allows (and count it)."""
        if not attempts.retry(retry_after):
            return False
        self.calls.add("registry.retries")
        return True

    def request(
        self,
        method: str,
        url: str,
        label: str,
        scopes: Iterable[str],
        *,
        headers: dict[str, str] | None = None,
        body: bytes | IO[bytes] | None = None,
        idempotent: bool = True,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request, answering auth challenges: a Bearer challenge fetches a token for the
        scopes (and the challenge's own), a rejected renewable login (ECR token) is renewed once.
        Transient failures are retried only when ``idempotent`` (see :meth:`_http`)."""
        url = urljoin(self.base_url + "/", url)
        wanted = merge_scopes(scopes)
        renewed = bearer_retried = False
        while True:
            sent = dict(headers or {})
            authorization = self._authorization(url, wanted)
            if authorization:
                sent["Authorization"] = authorization
            response = self._http(method, url, label, sent, body, idempotent)
            if response.status != 401:
                return response
            challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            if challenge.scheme == "bearer" and not bearer_retried:
                bearer_retried = True
                if challenge.params.get("scope"):
                    wanted = merge_scopes([*wanted, *challenge.params["scope"].split(" ")])
                with self._lock:
                    self._bearer = challenge
                    self._tokens.pop(wanted, None)
                continue
            with self._lock:
                uses_bearer = self._bearer is not None
            login = self.logins.current()
            if login is not None and not renewed and self.logins.renew(login):
                renewed = bearer_retried = True
                with self._lock:
                    self._tokens.clear()
                continue
            if uses_bearer and login is not None:
                # The token service accepted the login but the token is not good enough.
                raise ProviderError(
                    f"registry {self.host} refused {method} {label} for user {login.username}: "
                    f"{self._details(response)}"
                )
            raise self._rejected(login)

    def _details(self, response: urllib3.BaseHTTPResponse) -> str:
        try:
            errors = json.loads(response.data).get("errors") or []
            text = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors)
        except (ValueError, AttributeError):
            text = response.data.decode(errors="replace") if response.data else ""
        text = _one_line(text, 200) or f"HTTP {response.status}"
        login = None
        try:
            login = self.logins.current()
        except ProviderError:
            pass
        if login is not None:
            for secret in (login.password, login.basic().split(" ", 1)[1]):
                text = text.replace(secret, "***")
        return text

    def failure(self, response: urllib3.BaseHTTPResponse, what: str, repository: str) -> ProviderError:
        """The error for an unexpected answer: a :class:`TransientError` for 429 and 5xx."""
        details = self._details(response)
        if response.status in RETRYABLE_STATUS:
            return TransientError(
                f"registry {self.host}: {what} in {repository} failed with HTTP {response.status}: {details} "
                f"(still failing after retries: max_attempts {self.retry.max_attempts}, "
                f"retry_max_seconds {self.retry.max_seconds:g} under providers.registry)",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status == 403:
            login = self.logins.current()
            who = f" for user {login.username}" if login else ""
            return ProviderError(f"registry {self.host} denied {what} in {repository}{who}: {details}")
        if response.status == 404 and "NAME_UNKNOWN" in details:
            return ProviderError(f"registry {self.host} has no repository {repository} ({details})")
        return ProviderError(f"registry {self.host}: {what} in {repository} failed with HTTP {response.status}: {details}")

    # ------------------------------------------------------------------------- operations

    @staticmethod
    def _scopes(repository: str, *sources: str) -> tuple[str, ...]:
        return (f"repository:{repository}:pull,push", *(f"repository:{s}:pull" for s in sources))

    def blob_exists(self, repository: str, digest: str) -> bool:
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", "blob", self._scopes(repository))
        if response.status in (200, 307, 302):
            return True
        if response.status == 404:
            return False
        raise self.failure(response, f"HEAD blob {digest}", repository)

    def start_upload(self, repository: str, mount: tuple[str, str] | None = None) -> tuple[bool, str]:
        """``POST …/blobs/uploads/`` (with ``mount=<digest>&from=<repo>`` for a cross-repository
        mount): ``(True, "")`` when mounted, else ``(False, upload location)``."""
        path = f"/v2/{repository}/blobs/uploads/"
        if mount:
            digest, source = mount
            response = self.request(
                "POST", f"{path}?{urlencode({'mount': digest, 'from': source})}", "mount",
                self._scopes(repository, source), headers={"Content-Length": "0"}, idempotent=False,
            )
            if response.status == 201:
                return True, ""
            if response.status != 202:  # mount unsupported: start a plain upload below
                log.debug("mount of %s from %s into %s: HTTP %s", digest, source, repository, response.status)
                mount = None
        if not mount:
            response = self.request("POST", path, "upload", self._scopes(repository), headers={"Content-Length": "0"},
                                    idempotent=False)
        if response.status != 202:
            raise self.failure(response, "blob upload", repository)
        return False, self._location(response, repository)

    def _location(self, response: urllib3.BaseHTTPResponse, repository: str) -> str:
        location = response.headers.get("Location")
        if not location:
            raise ProviderError(f"registry {self.host} started an upload in {repository} without a Location")
        return urljoin(self.base_url + "/", location)

    def upload_blob(self, repository: str, blob: Blob, location: str) -> None:
        """Upload ``blob`` into the session at ``location``: one streamed ``PUT``, or ``PATCH``
        chunks of ``chunk_size`` then a closing ``PUT``. Files are streamed, never read whole."""
        scopes = self._scopes(repository)
        octets = {"Content-Type": "application/octet-stream"}
        if self.chunk_size and blob.size > self.chunk_size:
            with _open_blob(blob) as data:
                start = 0
                while chunk := data.read(self.chunk_size):
                    end = start + len(chunk) - 1
                    response = self.request(
                        "PATCH", location, "blob chunk", scopes, body=chunk,
                        headers={**octets, "Content-Length": str(len(chunk)), "Content-Range": f"{start}-{end}"},
                        idempotent=False,
                    )
                    if response.status != 202:
                        raise self.failure(response, f"PATCH blob {blob.digest}", repository)
                    location = self._location(response, repository)
                    start = end + 1
            response = self.request(
                "PUT", _with_digest(location, blob.digest), "blob", scopes, headers={**octets, "Content-Length": "0"},
                idempotent=False,
            )
        else:
            with _open_blob(blob) as data:
                response = self.request(
                    "PUT", _with_digest(location, blob.digest), "blob", scopes, body=data,
                    headers={**octets, "Content-Length": str(blob.size)}, idempotent=False,
                )
        if response.status != 201:
            raise self.failure(response, f"upload of blob {blob.digest}", repository)

    def manifest_digest(self, repository: str, reference: str) -> str | None:
        """``HEAD`` a manifest by digest or tag: its digest, or None when missing."""
        response = self.request(
            "HEAD", f"/v2/{repository}/manifests/{reference}", "manifest", self._scopes(repository),
            headers={"Accept": MANIFEST_MEDIA_TYPE},
        )
        if response.status == 200:
            return response.headers.get("Docker-Content-Digest") or (reference if reference.startswith("sha256:") else "")
        if response.status == 404:
            return None
        raise self.failure(response, f"HEAD manifest {reference}", repository)

    def put_manifest(self, repository: str, reference: str, manifest: bytes, digest: str) -> bool:
        """``PUT`` the manifest under a digest or tag. False when the registry keeps an existing
        tag (``TAG_INVALID``: ECR's immutable tags); any other refusal raises."""
        response = self.request(
            "PUT", f"/v2/{repository}/manifests/{reference}", "manifest", self._scopes(repository),
            body=manifest, headers={"Content-Type": MANIFEST_MEDIA_TYPE, "Content-Length": str(len(manifest))},
        )
        if response.status == 400 and not reference.startswith("sha256:") and "TAG_INVALID" in self._details(response):
            return False
        if response.status not in (200, 201):
            raise self.failure(response, f"PUT manifest {reference}", repository)
        stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise ProviderError(f"registry {self.host} stored the manifest of {repository} as {stored}, expected {digest}")
        return True

    def listing(self, path: str, key: str, scopes: Iterable[str]) -> list[str] | None:
        """A paginated list (``/v2/_catalog``'s ``repositories``, ``/tags/list``'s ``tags``),
        following ``Link: <…>; rel="next"``; None when the registry refuses or lacks it."""
        found: list[str] = []
        url: str | None = path
        while url:
            response = self.request("GET", url, key, scopes)
            if response.status in (401, 403, 404, 405):
                return None
            if response.status != 200:
                raise self.failure(response, f"GET {path}", path)
            found += json.loads(response.data).get(key) or []
            link = _NEXT_LINK.search(response.headers.get("Link", ""))
            url = link.group(1) if link else None
        return found

    def tags(self, repository: str) -> list[str]:
        """The repository's tags (none when it does not exist)."""
        return self.listing(f"/v2/{repository}/tags/list", "tags", self._scopes(repository)) or []

    def manifest(self, repository: str, digest: str) -> dict[str, Any] | None:
        """The image manifest ``digest`` of ``repository``, or None when it is not there."""
        response = self.request("GET", f"/v2/{repository}/manifests/{digest}", "manifest", self._scopes(repository),
                                headers={"Accept": MANIFEST_MEDIA_TYPE})
        if response.status == 404:
            return None
        if response.status != 200:
            raise self.failure(response, f"GET manifest {digest}", repository)
        return json.loads(response.data)

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """``DELETE`` a manifest by digest (its tags go with it); False when it was not there."""
        response = self.request("DELETE", f"/v2/{repository}/manifests/{digest}", "manifest",
                                (f"repository:{repository}:pull,push,delete",))
        if response.status == 404:
            return False
        if response.status not in (200, 202):
            raise self.failure(response, f"DELETE manifest {digest}", repository)
        return True

    def close(self) -> None:
        self._pool.clear()


def _default_ca_bundle() -> str | None:
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + "digest=" + quote(digest, safe="")


class _open_blob:
    """The blob's bytes as a readable file: its file on disk, streamed, or its in-memory data."""

    def __init__(self, blob: Blob):
        self.blob = blob
        self._file: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        import io

        if self.blob.path is not None:
            self._file = Path(self.blob.path).open("rb")
        else:
            self._file = io.BytesIO(self.blob.data or b"")
        return self._file

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


# --------------------------------------------------------------------------------------------
# The registry providers
# --------------------------------------------------------------------------------------------


class DistributionRegistry:
    """A :class:`faasops.providers.Registry` pushing Spin OCI artifacts to an OCI distribution
    registry (type ``oci``); :class:`EcrRegistry` adds ECR credentials and repositories."""

    def __init__(self, project: Project, options: RegistryOptions):
        self.project = project
        self.options = options
        self.calls = CallCounter()
        self._lock = threading.Lock()
        self._client: DistributionClient | None = None
        # Where this run saw each blob (digest → repository), for cross-repository mounts.
        self._blob_homes: dict[str, str] = {}
        self._uploading: dict[str, threading.Event] = {}
        # What the state recorded (see use_recorded): function address → artifact reference,
        # and the repositories those references are in.
        self._recorded: dict[str, str] = {}
        self._recorded_repositories: set[str] = set()

    def use_recorded(self, state: ActualState) -> None:
        """Trust the state the plan was made from: a function whose recorded artifact is the one
        it pushes now needs no registry request (the apply that recorded it pushed it), and a
        repository holding a recorded artifact exists."""
        recorded = {address: record.artifact for address, record in state.functions.items() if record.artifact}
        # host/repository: a registry_url changed since is another registry, not trusted.
        repositories = {reference.partition("@")[0] for reference in recorded.values()}
        with self._lock:
            self._recorded = recorded
            self._recorded_repositories = repositories

    # ------------------------------------------------------------------------ extension points

    def _logins(self) -> LoginSource:
        if self.options.password_env:
            return EnvironmentLogin(self.options.username or DEFAULT_USERNAME, self.options.password_env)
        return LoginSource()

    def _registry_url(self) -> str:
        return self.options.registry_url or ""

    def _ensure_repository(self, repository: str) -> None:
        """Make sure ``repository`` exists before the first upload (plain registries create
        repositories on push)."""

    # ------------------------------------------------------------------------------- push

    def client(self) -> DistributionClient:
        with self._lock:
            if self._client is not None:
                return self._client
        client = DistributionClient(self._registry_url(), self._logins(), self.calls, self.options)
        with self._lock:
            if self._client is None:
                self._client = client
            return self._client

    def repository(self, function: Function) -> str:
        """``<repository_prefix><project>/<workspace>/<function>``, lower-cased."""
        name = repository_name(self.project.name, function.workspace, function.name, self.options.repository_prefix)
        if not (2 <= len(name) <= 256 and _REPOSITORY.fullmatch(name)):
            raise ProviderError(
                f"{function.address}: {name!r} is not a valid repository name (lower-case letters, digits, "
                "single '.', '_' or '-' between them, '/' between components); check repository_prefix"
            )
        return name

    def tag(self, build: BuildResult) -> str:
        if self.options.tag is not None:
            return self.options.tag
        return build.build_key.removeprefix("sha256:")[:16]

    def push(self, function: Function, build: BuildResult, created: str) -> Artifact:
        artifact = function_artifact(
            function, build.wasm_path, build.wasm_digest, created, {FUNCTION_ANNOTATION: function.address}
        )
        repository = self.repository(function)
        tag = self.tag(build)
        client = self.client()
        digest = artifact.digest
        reference = f"{client.host}/{repository}@{digest}"

        with self._lock:
            recorded = self._recorded.get(function.address) == reference
        if recorded:
            # Pushed (with its tag) by the apply that recorded it: nothing to ask the registry.
            self.calls.add("manifest.recorded")
            return Artifact(reference=reference, digest=digest, pushed=False)

        if client.manifest_digest(repository, digest) is not None:
            # A registry only accepts a manifest whose blobs it has: nothing to upload.
            self.calls.add("manifest.present")
            for blob in artifact.blobs():
                self._remember(blob.digest, repository)
            if tag and client.manifest_digest(repository, tag) != digest:
                self._put_tag(client, repository, tag, artifact.manifest, digest)
            log.debug("%s already has %s", repository, digest)
            return Artifact(reference=reference, digest=digest, pushed=False)

        with self._lock:
            exists = f"{client.host}/{repository}" in self._recorded_repositories
        if not exists:
            self._ensure_repository(repository)
        for blob in artifact.blobs():
            self._push_blob(client, repository, blob, function)
        client.put_manifest(repository, digest, artifact.manifest, digest)
        if tag:
            self._put_tag(client, repository, tag, artifact.manifest, digest)
        self.calls.add("manifest.pushed")
        log.info("pushed %s", reference)
        return Artifact(reference=reference, digest=digest, pushed=True)

    def _put_tag(self, client: DistributionClient, repository: str, tag: str, manifest: bytes, digest: str) -> None:
        if client.put_manifest(repository, tag, manifest, digest):
            self.calls.add("tag.put")
            return
        # Deploys use the digest, so an immutable tag left on an earlier image is no failure.
        self.calls.add("tag.kept")
        log.warning(
            "%s: the registry keeps tag %s on another image (immutable tags); %s is pushed by digest only",
            repository, tag, digest,
        )

    def _remember(self, digest: str, repository: str) -> None:
        with self._lock:
            self._blob_homes.setdefault(digest, repository)

    def _mount_source(self, blob: Blob, repository: str, function: Function) -> str | None:
        with self._lock:
            home = self._blob_homes.get(blob.digest)
        if home and home != repository:
            return home
        if blob.media_type != WASM_LAYER_MEDIA_TYPE:
            return None
        # Not seen this run: a function built from the same source most likely has this component.
        for other in self.project.functions():
            if other.source_dir == function.source_dir and other.address != function.address:
                candidate = self.repository(other)
                if candidate != repository:
                    return candidate
        return None

    def _push_blob(self, client: DistributionClient, repository: str, blob: Blob, function: Function) -> None:
        if client.blob_exists(repository, blob.digest):
            self.calls.add("blob.skipped")
            self._remember(blob.digest, repository)
            return
        with self._lock:
            pending = self._uploading.get(blob.digest)
            mine = None
            if pending is None:
                mine = self._uploading[blob.digest] = threading.Event()
        try:
            if pending is not None:
                pending.wait()  # another thread is uploading it: mount from there afterwards
            self._upload_session(client, repository, blob, function)
            self._remember(blob.digest, repository)
        finally:
            if mine is not None:
                with self._lock:
                    del self._uploading[blob.digest]
                mine.set()

    def _upload_session(self, client: DistributionClient, repository: str, blob: Blob, function: Function) -> None:
        """Mount or upload ``blob``. A session (``POST`` → ``PATCH``… → ``PUT``) is not idempotent:
        after a transient failure anywhere in it, the blob is looked for (the final ``PUT`` may
        have landed with only its answer lost) and otherwise the upload restarts from a new
        session, within the retry budget."""
        attempts = self.options.retry.start()
        while True:
            try:
                source = self._mount_source(blob, repository, function)
                mounted, location = client.start_upload(repository, (blob.digest, source) if source else None)
                if mounted:
                    self.calls.add("blob.mounted")
                    log.debug("mounted %s into %s from %s", blob.digest, repository, source)
                else:
                    client.upload_blob(repository, blob, location)
                    self.calls.add("blob.uploaded")
                return
            except TransientError as exc:
                if client.blob_exists(repository, blob.digest):
                    self.calls.add("blob.uploaded")
                    return
                if not attempts.retry(exc.retry_after):
                    raise
                self.calls.add("registry.retries")
                self.calls.add("blob.upload restarted")
                log.debug("restarting the upload of %s to %s: %s", blob.digest, repository, exc)

    # ------------------------------------------------------------------------ garbage collection

    @property
    def project_prefix(self) -> str:
        """``<repository_prefix><project>/``: every repository of this project, and nothing else."""
        return repository_name(self.project.name, "", "", self.options.repository_prefix).removesuffix("/")

    def _repositories(self) -> list[str] | None:
        """This project's repositories, or None when the registry cannot list them."""
        client = self.client()
        try:
            catalog = client.listing("/v2/_catalog?n=1000", "repositories", ("registry:catalog:*",))
        except ProviderError:  # a token service that grants no catalog scope: the history still names them
            return None
        return None if catalog is None else [r for r in catalog if r.startswith(self.project_prefix)]

    def garbage(self, retained: Retained) -> Garbage:
        """Images of this project's repositories that ``retained`` does not name (found by their
        tags and by the pushes the history records: untagged images cannot be listed), and with
        ``retained.purge`` the repositories left with none (:class:`StoredArtifacts`). An image's
        size counts the blobs that no kept image of its repository shares and no image listed
        before it counted (the repository releases them; the registry's storage frees them once
        no other repository links them either)."""
        client = self.client()
        store = f"registry {client.host} {self.project_prefix}"
        keep, recorded = _by_repository(retained.artifacts), _by_repository(retained.recorded)
        listed = self._repositories()
        notes: list[str] = []
        if listed is None:
            notes.append("the registry does not list repositories: only those the history records were looked at")
        repositories = sorted(r for r in {*(listed or []), *recorded, *keep} if r.startswith(self.project_prefix))
        items: list[StoredItem] = []
        for repository in repositories:
            digests = set(recorded.get(repository, ()))
            for tag in client.tags(repository):
                digest = client.manifest_digest(repository, tag)
                if digest:
                    digests.add(digest)
            kept = keep.get(repository, set())
            # Blobs kept images need, or already counted for an earlier image of this list.
            counted = {blob for digest in kept for blob in _blobs(client.manifest(repository, digest))}
            for digest in sorted(digests - kept):
                manifest = client.manifest(repository, digest)
                if manifest is None:
                    continue  # recorded once, gone since
                sizes = _blob_sizes(manifest)
                items.append(StoredItem("image", f"{client.host}/{repository}@{digest}",
                                        sum(n for blob, n in sizes.items() if blob not in counted)))
                counted.update(sizes)
            if retained.purge and not kept and self._deletes_repositories:
                items.append(StoredItem("repository", repository, 0))
        return Garbage(store, tuple(items), tuple(notes))

    #: Whether :meth:`_delete_repository` can remove a repository (a plain OCI registry cannot).
    _deletes_repositories = False

    def _delete_repository(self, repository: str) -> bool:
        raise NotImplementedError

    def _delete_images(self, repository: str, digests: list[str]) -> set[str]:
        """Delete the images ``digests`` of ``repository``; the digests that were there and went.
        The registry API's manifest ``DELETE`` (its tags go with it)."""
        client = self.client()
        return {digest for digest in digests if client.delete_manifest(repository, digest)}

    def collect(self, garbage: Garbage) -> Garbage:
        removed: list[StoredItem] = []
        images: dict[str, list[StoredItem]] = {}
        for item in garbage.items:
            if item.kind == "image":
                name, _, digest = item.name.rpartition("@")
                images.setdefault(name.partition("/")[2], []).append(item)
        for repository, items in images.items():
            gone = self._delete_images(repository, [item.name.rpartition("@")[2] for item in items])
            removed += [item for item in items if item.name.rpartition("@")[2] in gone]
        for item in garbage.items:  # repositories once their images are gone
            if item.kind == "repository" and self._delete_repository(item.name):
                removed.append(item)
        return Garbage(garbage.store, tuple(removed), garbage.notes)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _by_repository(references: Iterable[str]) -> dict[str, set[str]]:
    """``{repository: {digest}}`` of image references ``host/repository@sha256:…``."""
    found: dict[str, set[str]] = {}
    for reference in references:
        name, _, digest = reference.rpartition("@")
        if name and digest.startswith("sha256:"):
            found.setdefault(name.partition("/")[2], set()).add(digest)
    return found


def _blob_sizes(manifest: dict[str, Any]) -> dict[str, int]:
    return {d["digest"]: int(d.get("size", 0)) for d in [manifest.get("config") or {}, *manifest.get("layers", [])]
            if "digest" in d}


def _blobs(manifest: dict[str, Any] | None) -> set[str]:
    return set(_blob_sizes(manifest)) if manifest else set()


class EcrRegistry(DistributionRegistry):
    """Type ``ecr``: IRSA-first credentials (boto3 chain → ``GetAuthorizationToken``), ECR's
    ``proxyEndpoint`` (or ``registry_url``), repositories created when missing."""

    def __init__(self, project: Project, options: RegistryOptions):
        super().__init__(project, options)
        self.ecr = EcrApi(options, self.calls)

    def _logins(self) -> LoginSource:
        if self.options.password_env:
            return EnvironmentLogin(self.options.username or DEFAULT_USERNAME, self.options.password_env)
        return EcrLogin(self.ecr)

    def _registry_url(self) -> str:
        if self.options.registry_url:
            return self.options.registry_url
        endpoint = self.ecr.authorization().proxy_endpoint
        if not endpoint:
            raise ProviderError("ECR GetAuthorizationToken returned no proxyEndpoint; set registry_url")
        return endpoint

    def _ensure_repository(self, repository: str) -> None:
        if self.options.create_repositories:
            self.ecr.ensure_repository(repository)

    _deletes_repositories = True

    def _delete_images(self, repository: str, digests: list[str]) -> set[str]:
        """``ecr:BatchDeleteImage``, 100 digests a call: ECR's documented way to delete images.
        An image ECR's API does not know lives only behind ``registry_url`` (a registry endpoint
        apart from the ECR API): it is deleted there through the registry API."""
        ids = {"registryId": self.options.registry_id} if self.options.registry_id else {}
        gone: set[str] = set()
        elsewhere: list[str] = []
        for start in range(0, len(digests), 100):
            chunk = digests[start:start + 100]
            answer = self.ecr.call("BatchDeleteImage", repositoryName=repository,
                                   imageIds=[{"imageDigest": d} for d in chunk], **ids)
            gone |= {i["imageDigest"] for i in answer.get("imageIds", []) if "imageDigest" in i}
            elsewhere += [f["imageId"]["imageDigest"] for f in answer.get("failures", [])
                          if f.get("failureCode") == "ImageNotFound" and "imageDigest" in f.get("imageId", {})]
        return gone | (super()._delete_images(repository, elsewhere) if elsewhere else set())

    def _repositories(self) -> list[str]:
        """This project's repositories, from ``ecr:DescribeRepositories`` (ECR has no catalog)."""
        ids = {"registryId": self.options.registry_id} if self.options.registry_id else {}
        found: list[str] = []
        request: dict[str, Any] = {"maxResults": 1000, **ids}
        while True:
            answer = self.ecr.call("DescribeRepositories", **request)
            found += [r["repositoryName"] for r in answer.get("repositories", [])
                      if r["repositoryName"].startswith(self.project_prefix)]
            if not answer.get("nextToken"):
                return found
            request["nextToken"] = answer["nextToken"]

    def _delete_repository(self, repository: str) -> bool:
        """``ecr:DeleteRepository`` (``force``: images pushed meanwhile by hand go with it)."""
        from botocore.exceptions import ClientError

        ids = {"registryId": self.options.registry_id} if self.options.registry_id else {}
        try:
            self.ecr.call("DeleteRepository", tolerate=("RepositoryNotFoundException",), repositoryName=repository,
                          force=True, **ids)
        except ClientError:
            return False
        return True


# --------------------------------------------------------------------------------------------
# Hook implementations
# --------------------------------------------------------------------------------------------


@hookimpl
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    return [("registry", TYPE_ECR, ECR_OPTIONS_SCHEMA), ("registry", TYPE_OCI, OCI_OPTIONS_SCHEMA)]


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [
        ("registry", TYPE_ECR, "Amazon ECR; IRSA-first credentials (AWS default chain), repositories created when missing"),
        ("registry", TYPE_OCI, "any OCI distribution registry (basic/bearer auth)"),
    ]


@hookimpl
def faasops_registry(config: ProviderConfig, project: Project) -> DistributionRegistry | None:
    if config.type == TYPE_ECR:
        return EcrRegistry(project, RegistryOptions.parse(config))
    if config.type == TYPE_OCI:
        return DistributionRegistry(project, RegistryOptions.parse(config))
    return None

