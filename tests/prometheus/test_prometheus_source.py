"""The ``prometheus`` metrics source on its own: option checks, PromQL escaping against a real
Prometheus, and the one-line errors for servers that are slow or are not Prometheus."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_support import EXAMPLES
from faasops.errors import ProviderError
from faasops.manifest import load_project
from faasops.model import Project, ProviderConfig
from faasops.plugin_manager import create_plugin_manager, create_provider
from faasops.plugins.prometheus import PrometheusMetricsSource, promql_duration, promql_string, render_query
from testkit.metrics_exporter import MetricsExporter
from testkit.prometheus import PrometheusServer


@pytest.fixture(scope="module")
def shop() -> Project:
    return load_project(EXAMPLES / "cloud")


def source(project: Project, **options: Any) -> PrometheusMetricsSource:
    """The source as faasops makes it: options checked (old names renamed) by the plugin manager."""
    created = create_provider(create_plugin_manager(), project, "metrics", ProviderConfig("metrics", "prometheus", options))
    assert isinstance(created, PrometheusMetricsSource)
    return created


def window(source: PrometheusMetricsSource, since_s: float = 300, step_s: float = 15) -> dict[str, Any]:
    now = time.time()
    return {"since": now - since_s, "until": now, "step_s": step_s}


def test_label_values_cannot_break_out_of_their_promql_string(prometheus: PrometheusServer) -> None:
    hostile = 'x"} or vector(42) or up{job="'
    query = render_query('sum(container_memory_working_set_bytes{function_id="{fid}"})',
                         {"fid": promql_string(hostile)})
    assert prometheus.query(query) == []  # one label value that matches nothing, not vector(42)
    backslashes = render_query('count(up{job="{fid}"})', {"fid": promql_string('a\\"b\nc')})
    assert prometheus.query(backslashes) == []


def test_placeholders_fill_in_and_other_braces_stay_promql() -> None:
    template = 'rate(x{function_id="{fid}",namespace="{namespace}",c!=""}[{window}]) + on() {other}'
    assert render_query(template, {"fid": "ws.fn", "namespace": "ns", "window": "60s"}) == \
        'rate(x{function_id="ws.fn",namespace="ns",c!=""}[60s]) + on() {other}'
    assert promql_duration(60) == "60s" and promql_duration(1.5) == "1500ms"


def test_default_queries_select_the_functions_containers_by_function_id(shop: Project) -> None:
    queries = {q.name: promql for q, promql in source(shop, url="http://p:9090").promql("storefront", "hello", 15)}
    assert queries == {
        "cpu_cores": 'sum(rate(container_cpu_usage_seconds_total{function_id="storefront.hello",container!=""}[60s]))',
        "memory_bytes": 'sum(container_memory_working_set_bytes{function_id="storefront.hello",container!=""})',
        "replicas": 'count(count by (pod) (container_memory_working_set_bytes{function_id="storefront.hello",'
                    'container!=""}))',
    }


def test_rate_window_is_the_step_but_at_least_rate_window(shop: Project) -> None:
    metrics = source(shop, url="http://p:9090", rate_window="2m", queries={"cpu_cores": "rate(x[{window}])"})
    assert metrics.promql("storefront", "hello", 15)[0][1] == "rate(x[120s])"
    assert metrics.promql("storefront", "hello", 300)[0][1] == "rate(x[300s])"
    assert source(shop, url="http://p:9090", rate_window=0.5).promql("storefront", "hello", 0.25)[0][1].endswith("[500ms]))")


@pytest.mark.parametrize(("options", "message"), [
    ({"url": "http://p:9090", "tokn_env": "X"},
     "providers.metrics.tokn_env: unknown option 'tokn_env' (did you mean 'token_env'?)"),
    ({"url": "prometheus:9090"}, "needs `url`, the Prometheus http(s) base URL"),
    ({"url": "http://p:9090", "timeout": "soon"},
     "providers.metrics.timeout_seconds must be a positive number of seconds"),
    ({"url": "http://p:9090", "rate_window": 0}, "providers.metrics.rate_window: must be more than 0"),
    ({"url": "http://p:9090", "queries": {"latency": "x"}},
     "queries: unknown series latency; known: cpu_cores, memory_bytes, replicas"),
    ({"url": "http://p:9090", "queries": {"cpu_cores": 7}}, "queries.cpu_cores must be a PromQL template"),
])
def test_bad_options_are_refused_naming_the_option(shop: Project, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ProviderError) as raised:
        create_provider(create_plugin_manager(), shop, "metrics", ProviderConfig("metrics", "prometheus", options))
    assert message in str(raised.value)


def test_token_env_that_is_not_set_is_refused(shop: Project, prometheus: PrometheusServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAASOPS_TEST_PROMETHEUS_TOKEN", raising=False)
    metrics = source(shop, url=prometheus.url, token_env="FAASOPS_TEST_PROMETHEUS_TOKEN")
    with pytest.raises(ProviderError, match=r"token_env names \$FAASOPS_TEST_PROMETHEUS_TOKEN, which is not set"):
        metrics.query("storefront", "hello", **window(metrics))


def test_token_env_with_a_token_queries_as_usual(shop: Project, prometheus: PrometheusServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAASOPS_TEST_PROMETHEUS_TOKEN", "t0ken")
    metrics = source(shop, url=prometheus.url, token_env="FAASOPS_TEST_PROMETHEUS_TOKEN")
    assert [s.name for s in metrics.query("storefront", "hello", **window(metrics))] == \
        ["cpu_cores", "memory_bytes", "replicas"]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_prometheus_that_does_not_answer_times_out_with_the_option_to_raise(shop: Project, silent_server: str) -> None:
    metrics = source(shop, url=silent_server, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ProviderError) as raised:
        metrics.query("storefront", "hello", **window(metrics))
    assert time.monotonic() - started < 3
    assert str(raised.value) == (f"Prometheus at {silent_server} did not answer the cpu_cores query within 0.3s "
                                 "(providers.metrics.timeout_seconds)")


def test_url_that_is_not_prometheus_says_so(shop: Project, tmp_path: Path) -> None:
    with MetricsExporter([]) as not_prometheus:  # an HTTP server that serves only GET /metrics
        metrics = source(shop, url=f"http://{not_prometheus.target}")
        with pytest.raises(ProviderError) as raised:
            metrics.query("storefront", "hello", **window(metrics))
    assert str(raised.value).startswith(f"http://{not_prometheus.target} did not answer like the Prometheus HTTP API "
                                        "(HTTP 501, text/html from POST /api/v1/query_range): check providers.metrics.url")


def test_too_many_points_is_prometheus_own_message(shop: Project, prometheus: PrometheusServer) -> None:
    metrics = source(shop, url=prometheus.url)
    with pytest.raises(ProviderError, match=r"rejected the cpu_cores query \(bad_data\): exceeded maximum resolution"):
        metrics.query("storefront", "hello", **window(metrics, since_s=86400, step_s=1))
