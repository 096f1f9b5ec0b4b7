"""The function page's chart from a real Prometheus (Debian's, fed by remote write): the metrics
slot's CPU series drawn as SVG points with their values."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from api_support import ADMIN_TOKEN, ApiServer
from console_support import ConsoleClient
from observe_support import set_providers
from test_api_observe import prometheus  # noqa: F401  (the module's Prometheus with demo/hello's pods)

from testkit.prometheus import PrometheusServer


def test_the_chart_draws_prometheus_cpu_of_the_functions_pods(console_project: Path,
                                                              start_console: Callable[[], ApiServer],
                                                              prometheus: PrometheusServer) -> None:  # noqa: F811
    set_providers(console_project, {"metrics": {"type": "prometheus", "url": prometheus.url}})
    browser = ConsoleClient(start_console().url)
    try:
        assert browser.sign_in(ADMIN_TOKEN).status_code == 303
        page = browser.get("/workspaces/demo/functions/hello", params={"since": "1h"})
        fragment = browser.get("/workspaces/demo/functions/hello/live/chart", params={"since": "1h"})
    finally:
        browser.close()

    assert page.status_code == 200 and fragment.status_code == 200
    for html in (page.text, fragment.text):
        cpu = html.split('data-series="cpu_cores"')[1].split("</figure>")[0]
        values = [float(v) for v in re.findall(r'class="point"[^>]*data-value="([^"]+)"', cpu)]
        # 20 minutes of load (2 pods × 0.25 cores), its first minute still ramping up in rate().
        assert len(values) >= 15 and all(abs(v - 0.5) < 1e-6 for v in values[1:]), values
        assert "over the last 1h · prometheus" in cpu
        assert 'data-series="replicas"' in html
