"""The test exporter as a scrape target: Prometheus scrapes it every second and `faasops
metrics` reads the live series. (Prometheus applies a new scrape job ~5 s after start, so this
module costs a few seconds; the other modules feed history by remote write instead.)"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.availability import unavailable
from testkit.metrics_exporter import MIB, FunctionLoad, MetricsExporter, exposition
from testkit.prometheus import PrometheusServer, PrometheusUnavailable
from prometheus_test_support import cloud_copy, metrics

LOAD = FunctionLoad("storefront", "hello", pods=2, cpu_cores=0.25, memory_bytes=32 * MIB,
                    started=time.time() - 3600)  # running for an hour: counters far from zero


@pytest.fixture(scope="module")
def scraping() -> Iterator[PrometheusServer]:
    with MetricsExporter([LOAD]) as exporter:
        try:
            server = PrometheusServer(scrape_targets=[exporter.target])
        except PrometheusUnavailable as exc:
            unavailable(str(exc))
        try:
            # Scraped for 3 s: a 2 s rate window is covered by samples at both ends.
            server.wait_for('count_over_time(container_cpu_usage_seconds_total{function_id="storefront.hello"}[3s]) >= 3',
                            timeout_s=20)
            yield server
        finally:
            server.stop()


def test_exposition_is_prometheus_text_with_advancing_counters() -> None:
    first, later = exposition([LOAD], 1000.0 + LOAD.started), exposition([LOAD], 1010.0 + LOAD.started)
    assert "# TYPE container_cpu_usage_seconds_total counter" in first
    assert ('container_cpu_usage_seconds_total{container="hello",function_id="storefront.hello",namespace="storefront",'
            'pod="hello-7d9c5b8f4-p0000",workspace_id="storefront"} 250.0') in first
    assert ('container_cpu_usage_seconds_total{container="hello",function_id="storefront.hello",namespace="storefront",'
            'pod="hello-7d9c5b8f4-p0000",workspace_id="storefront"} 252.5') in later
    assert 'kube_deployment_status_replicas_available{deployment="hello",namespace="storefront"} 2.0' in first


def test_metrics_read_the_scraped_exporter(scraping: PrometheusServer, tmp_path: Path) -> None:
    up = scraping.query('up{job="exporter"}')
    assert [sample["value"][1] for sample in up] == ["1"]
    project = cloud_copy(tmp_path, {"type": "prometheus", "url": scraping.url, "rate_window": "2s"})
    result = metrics(project, "storefront/hello", "--since", "10s", "--step", "1s", "--format", "json")
    assert result.code == 0, result.output
    series = {s["name"]: s["points"] for s in json.loads(result.out)["series"]}
    assert series["cpu_cores"][-1][1] == pytest.approx(0.5, rel=0.1)
    assert series["memory_bytes"][-1][1] == 2 * 32 * MIB
    assert series["replicas"][-1][1] == 2
