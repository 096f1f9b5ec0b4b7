"""Fixtures for the GitOps hand-off tests: the Kubernetes API emulator with real kubectl
(:mod:`kube_fixtures`). Local bare git repositories and projects made from the hello example
come from the tests' support module.

No ``__init__.py`` here, as in tests/kubernetes: the directory must not shadow a package.
"""

from kube_fixtures import clean_cluster, kube, kubeconfig, kubectl  # noqa: F401
