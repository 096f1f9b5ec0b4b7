"""`faasops metrics` through the real CLI on the cloud example, reading a real Prometheus that
holds the history of a function's pods (fed by remote write)."""

from __future__ import annotations

import json
import socket
from itertools import pairwise
from pathlib import Path

import pytest

from testkit.prometheus import PrometheusServer
from prometheus_test_support import HELLO_CORES_PER_POD, HELLO_MEMORY_PER_POD, HELLO_PODS, cloud_copy, metrics

# The documented alternative to relabelled cAdvisor series (README): join with kube-state-metrics.
KUBE_STATE_METRICS_QUERIES = {
    "cpu_cores": 'sum(rate(container_cpu_usage_seconds_total{namespace="{namespace}",container!=""}[{window}])'
                 ' * on (namespace, pod) group_left () max by (namespace, pod) '
                 '(kube_pod_labels{label_function_id="{fid}"}))',
    "memory_bytes": 'sum(container_memory_working_set_bytes{namespace="{namespace}",container!=""}'
                    ' * on (namespace, pod) group_left () max by (namespace, pod) '
                    '(kube_pod_labels{label_function_id="{fid}"}))',
    "replicas": 'sum(kube_deployment_status_replicas_available{namespace="{namespace}",deployment="{function}"})',
}


@pytest.fixture
def project(prometheus: PrometheusServer, tmp_path: Path) -> Path:
    return cloud_copy(tmp_path, {"type": "prometheus", "url": prometheus.url})


def series_of(output: str) -> dict[str, dict]:
    document = json.loads(output)
    return {s["name"]: s for s in document["series"]}


def test_metrics_json_has_cpu_rate_memory_and_replicas_of_the_functions_pods(project: Path) -> None:
    result = metrics(project, "storefront/hello", "--since", "5m", "--step", "15s", "--format", "json")
    assert result.code == 0, result.output
    document = json.loads(result.out)
    assert document["function"] == "storefront/hello" and document["step_seconds"] == 15
    series = series_of(result.out)
    assert list(series) == ["cpu_cores", "memory_bytes", "replicas"]
    assert [series[n]["unit"] for n in series] == ["cores", "bytes", "pods"]
    for s in series.values():
        assert len(s["points"]) == 21, s  # 5 minutes in 15 s steps, both ends included
        times = [t for t, _ in s["points"]]
        assert all(b - a == pytest.approx(15) for a, b in pairwise(times))
    # Only the function's containers: not the pod-level cgroup series, not admin/hello's pods.
    assert all(v == pytest.approx(HELLO_PODS * HELLO_CORES_PER_POD, rel=1e-6) for _, v in series["cpu_cores"]["points"])
    assert all(v == HELLO_PODS * HELLO_MEMORY_PER_POD for _, v in series["memory_bytes"]["points"])
    assert all(v == HELLO_PODS for _, v in series["replicas"]["points"])


def test_metrics_table_shows_sparklines_and_latest_values(project: Path) -> None:
    result = metrics(project, "storefront/hello", "--since", "5m", "--step", "1m")
    assert result.code == 0, result.output
    lines = result.out.splitlines()
    assert lines[0] == "storefront/hello (step 60s)"
    assert lines[1].split()[0] == "cpu_cores" and "last 0.5 cores" in lines[1]
    assert lines[2].split()[0] == "memory_bytes" and f"last {HELLO_PODS * HELLO_MEMORY_PER_POD:.4g} bytes" in lines[2]
    assert lines[3].split()[0] == "replicas" and "last 2 pods" in lines[3]
    assert "▇▇▇▇▇▇" in lines[1] or "██████" in lines[1]  # a flat line at the top of its scale
    assert "TIME" in result.out and "CPU_CORES" in result.out and "REPLICAS" in result.out


def test_metrics_plot_writes_a_png(project: Path, tmp_path: Path) -> None:
    plot = tmp_path / "hello.png"
    result = metrics(project, "storefront/hello", "--since", "15m", "--step", "30s", "--plot", str(plot))
    assert result.code == 0, result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {plot}" in result.err


def test_metrics_of_a_function_without_series_has_empty_series(project: Path) -> None:
    result = metrics(project, "storefront/checkout", "--since", "5m", "--step", "15s", "--format", "json")
    assert result.code == 0, result.output
    assert {name: s["points"] for name, s in series_of(result.out).items()} == {
        "cpu_cores": [], "memory_bytes": [], "replicas": []}


def test_metrics_table_of_a_function_without_series_says_no_data(project: Path) -> None:
    result = metrics(project, "storefront/checkout", "--since", "5m")
    assert result.code == 0, result.output
    assert "no data" in result.out


def test_metrics_of_an_undeclared_function_lists_the_declared_ones(project: Path) -> None:
    result = metrics(project, "storefront/nope")
    assert result.code == 1
    assert result.err == ("Error: unknown function storefront/nope (functions of workspace storefront: "
                          "storefront/checkout, storefront/hello)\n")
    workspace = metrics(project, "backoffice/hello")
    assert workspace.code == 1
    assert workspace.err == "Error: unknown workspace 'backoffice' (workspaces of project shop: storefront)\n"


def test_metrics_with_prometheus_unreachable_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the test runs
    project = cloud_copy(tmp_path, {"type": "prometheus", "url": f"http://127.0.0.1:{port}"})
    result = metrics(project, "storefront/hello")
    assert result.code == 1
    assert result.err == (f"Error: cannot reach Prometheus at http://127.0.0.1:{port}: connection refused "
                          "(providers.metrics.url)\n")
    assert result.out == ""


def test_metrics_without_a_prometheus_url_says_what_to_set(tmp_path: Path) -> None:
    project = cloud_copy(tmp_path, {"type": "prometheus"})  # the aws preset's metrics type, no url
    result = metrics(project, "storefront/hello")
    assert result.code == 1
    assert result.err == ("Error: 1 problem(s) in the manifests:\n"
                          "  faas.local.yaml:3:5 providers.metrics: missing required option 'url'\n")


def test_metrics_bad_query_template_shows_prometheus_error(prometheus: PrometheusServer, tmp_path: Path) -> None:
    project = cloud_copy(tmp_path, {"type": "prometheus", "url": prometheus.url,
                                    "queries": {"cpu_cores": "sum(rate(container_cpu_usage_seconds_total[{window}])"}})
    result = metrics(project, "storefront/hello")
    assert result.code == 1
    assert result.err.startswith(f"Error: Prometheus at {prometheus.url} rejected the cpu_cores query (bad_data): ")
    assert "query: sum(rate(container_cpu_usage_seconds_total[60s])" in result.err
    assert len(result.err.splitlines()) == 1


def test_metrics_queries_joining_kube_state_metrics_give_the_same_numbers(prometheus: PrometheusServer,
                                                                          tmp_path: Path) -> None:
    project = cloud_copy(tmp_path, {"type": "prometheus", "url": prometheus.url, "queries": KUBE_STATE_METRICS_QUERIES})
    result = metrics(project, "storefront/hello", "--since", "2m", "--step", "30s", "--format", "json")
    assert result.code == 0, result.output
    series = series_of(result.out)
    assert [v for _, v in series["cpu_cores"]["points"]] == pytest.approx([HELLO_PODS * HELLO_CORES_PER_POD] * 5)
    assert [v for _, v in series["memory_bytes"]["points"]] == [HELLO_PODS * HELLO_MEMORY_PER_POD] * 5
    assert [v for _, v in series["replicas"]["points"]] == [HELLO_PODS] * 5


def test_metrics_query_set_to_empty_leaves_the_series_out(prometheus: PrometheusServer, tmp_path: Path) -> None:
    project = cloud_copy(tmp_path, {"type": "prometheus", "url": prometheus.url, "queries": {"replicas": ""}})
    result = metrics(project, "storefront/hello", "--since", "1m", "--format", "json")
    assert result.code == 0, result.output
    assert list(series_of(result.out)) == ["cpu_cores", "memory_bytes"]
