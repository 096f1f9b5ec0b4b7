"""Helpers the Kubernetes deployer tests import (conftest.py holds the fixtures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from faasops.model import Function, Project
from faasops.plugins.spinkube import SpinKubeScaffolder
from testkit.kubectl import KubectlRunner

REPO = Path(__file__).resolve().parents[2]
ARTIFACT = "registry.example/x@sha256:" + "a" * 64
OTHER_ARTIFACT = "registry.example/x@sha256:" + "b" * 64


def kubectl_json(kubectl: KubectlRunner, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def render(project: Project, function: Function, artifact: str = ARTIFACT) -> list[dict[str, Any]]:
    return SpinKubeScaffolder().render(project, function, artifact)


def only_function(project: Project) -> Function:
    (function,) = project.functions()
    return function
