"""The ``prometheus`` metrics source: CPU, memory and replicas of a function from Prometheus.

``faasops metrics WS/FN --since 1h --step 1m`` runs one range query (``/api/v1/query_range``
with ``start``/``end``/``step``) per series:

============  ======  ==========================================================================
series        unit    default PromQL template
============  ======  ==========================================================================
cpu_cores     cores   ``sum(rate(container_cpu_usage_seconds_total{function_id="{fid}",container!=""}[{window}]))``
memory_bytes  bytes   ``sum(container_memory_working_set_bytes{function_id="{fid}",container!=""})``
replicas      pods    ``count(count by (pod) (container_memory_working_set_bytes{function_id="{fid}",container!=""}))``
============  ======  ==========================================================================

``container!=""`` drops cAdvisor's pod-level cgroup series, which would count every container
twice. Replicas count the pods that had a memory series at each step, so they need nothing
beyond the series CPU and memory need (no kube-state-metrics).

The defaults need the cAdvisor series to carry the pods' ``function_id`` label. The kubelet
serves cAdvisor series for every pod of its node with ``namespace``/``pod``/``container`` labels
only, so this is the platform's collection pipeline's job; where it cannot add pod labels, join
with kube-state-metrics' ``kube_pod_labels`` through ``queries`` (see the README).

Templates are plain text with these placeholders (anything else in braces is PromQL):
``{fid}`` the function_id (``<workspace>.<function>``), ``{workspace}``, ``{function}`` (also the
Deployment's name), ``{namespace}`` (the workspace's), all escaped for a double-quoted PromQL
string (use them inside ``"…"``), and ``{window}``, the ``rate()`` range: the step, but at least
``rate_window``, so each point covers its whole step and a range always holds several scrapes.

Options (``providers.metrics``): ``url`` (required; the Prometheus base URL, a path prefix is
kept), ``token_env`` (the name of an environment variable holding a bearer token),
``timeout_seconds`` (30 s per query; formerly ``timeout``), ``rate_window`` (``1m``: at least 4 scrape intervals),
``queries`` (``{cpu_cores: …, memory_bytes: …, replicas: …}``: templates replacing the defaults;
``""`` leaves that series out).

A query returning several series is summed per step; no data gives series without points (the
renderer says so); NaN and infinite values are dropped.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from faasops.errors import FaasopsError, ProviderError
from faasops.hookspecs import hookimpl
from faasops.model import Project, ProviderConfig
from faasops.observe import parse_duration
from faasops.plugins.cluster_invoke import bearer_token, declared_function
from faasops.plugins.kubernetes import _one_line, _reason
from faasops.plugins.spinkube import function_id
from faasops.providers import MetricSeries

TYPE = "prometheus"
WHERE = "providers.metrics"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RATE_WINDOW_S = 60.0
_DURATION = {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "string", "minLength": 1}]}
OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "minLength": 1, "description": "the Prometheus http(s) base URL"},
        "token_env": {"type": "string", "minLength": 1, "writeOnly": True,
                      "description": "environment variable holding a bearer token"},
        "timeout_seconds": {**_DURATION, "default": DEFAULT_TIMEOUT_S, "aliases": ["timeout"],
                            "description": "seconds per query (or a duration such as 90s)"},
        "rate_window": {**_DURATION, "default": DEFAULT_RATE_WINDOW_S,
                        "description": "shortest rate() window: a duration such as 1m, or seconds"},
        "queries": {"type": "object",
                    "description": "PromQL templates replacing the defaults (cpu_cores, memory_bytes, replicas)"},
    },
    "required": ["url"],
}


@dataclass(frozen=True)
class Query:
    """One series faasops metrics shows, and the PromQL that reads it."""

    name: str
    unit: str
    template: str


DEFAULT_QUERIES = (
    Query("cpu_cores", "cores",
          'sum(rate(container_cpu_usage_seconds_total{function_id="{fid}",container!=""}[{window}]))'),
    Query("memory_bytes", "bytes",
          'sum(container_memory_working_set_bytes{function_id="{fid}",container!=""})'),
    Query("replicas", "pods",
          'count(count by (pod) (container_memory_working_set_bytes{function_id="{fid}",container!=""}))'),
)
PLACEHOLDER = re.compile(r"\{(fid|workspace|function|namespace|window)\}")


def promql_string(value: str) -> str:
    """``value`` escaped for the inside of a double-quoted PromQL string (label values): no name
    can close the string and add matchers or operators of its own."""
    return (value.replace("\\", "\\\\").replace('"', '\\"')
            .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))


def promql_duration(seconds: float) -> str:
    """``90s``-style, in milliseconds when a whole number of seconds would round."""
    return f"{int(seconds)}s" if float(seconds).is_integer() else f"{round(seconds * 1000)}ms"


def render_query(template: str, values: Mapping[str, str]) -> str:
    """Fill the placeholders of a template; everything else stays as it is."""
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


class PrometheusMetricsSource:
    """A :class:`~faasops.providers.MetricsSource` reading a Prometheus HTTP API."""

    def __init__(self, project: Project, options: Mapping[str, Any]):
        url = options.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ProviderError(f"{WHERE} (type prometheus) needs `url`, the Prometheus http(s) base URL "
                                f"(e.g. http://prometheus.monitoring:9090); got {url!r}")
        self.project = project
        self.url = url.rstrip("/")
        self.token_env = options.get("token_env")
        self.timeout = _seconds(options.get("timeout_seconds", DEFAULT_TIMEOUT_S), "timeout_seconds")
        self.rate_window = _seconds(options.get("rate_window", DEFAULT_RATE_WINDOW_S), "rate_window")
        self.queries = _queries(options.get("queries"))

    def query(self, workspace: str, function: str, *, since: float, until: float, step_s: float) -> list[MetricSeries]:
        return [MetricSeries(q.name, q.unit, self._range(q.name, promql, since, until, step_s))
                for q, promql in self.promql(workspace, function, step_s)]

    def promql(self, workspace: str, function: str, step_s: float) -> list[tuple[Query, str]]:
        """Each series' query for one function at this resolution."""
        declared, _ = declared_function(self.project, workspace, function)
        values = {
            "fid": promql_string(function_id(workspace, function)),
            "workspace": promql_string(workspace),
            "function": promql_string(function),
            "namespace": promql_string(declared.spec()["namespace"]),
            "window": promql_duration(max(step_s, self.rate_window)),
        }
        return [(q, render_query(q.template, values)) for q in self.queries]

    def _range(self, name: str, promql: str, since: float, until: float, step_s: float) -> tuple[tuple[float, float], ...]:
        # Whole milliseconds and a whole number of steps, so the last point is `until` itself.
        step_ms = max(1, round(step_s * 1000))
        end_ms = round(until * 1000)
        start_ms = end_ms - math.ceil(round(until * 1000 - since * 1000) / step_ms) * step_ms
        data = self._get("/api/v1/query_range", name, promql, {
            "query": promql, "start": f"{start_ms / 1000:.3f}", "end": f"{end_ms / 1000:.3f}",
            "step": f"{step_ms / 1000:.3f}",
        })
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
            raise ProviderError(f"Prometheus at {self.url} answered the {name} range query with {kind!r}, "
                                f"not a matrix; query: {promql}")
        summed: dict[float, float] = {}
        for series in data.get("result") or ():
            for stamp, text in series.get("values") or ():
                value = float(text)
                if math.isfinite(value):
                    summed[float(stamp)] = summed.get(float(stamp), 0.0) + value
        return tuple(sorted(summed.items()))

    def _get(self, path: str, name: str, promql: str, params: dict[str, str]) -> Any:
        import urllib3

        headers = {"Accept": "application/json"}
        if self.token_env:
            headers["Authorization"] = bearer_token(self.token_env, WHERE)
        try:
            # POST, form-encoded: a long query never meets a URL length limit.
            raw = urllib3.PoolManager().request(
                "POST", self.url + path, fields=params, encode_multipart=False, headers=headers,
                timeout=urllib3.Timeout(total=self.timeout), retries=False, redirect=False,
            )
        except urllib3.exceptions.ReadTimeoutError:
            raise ProviderError(f"Prometheus at {self.url} did not answer the {name} query within "
                                f"{self.timeout:g}s ({WHERE}.timeout_seconds)") from None
        except urllib3.exceptions.HTTPError as exc:
            raise ProviderError(f"cannot reach Prometheus at {self.url}: {_reason(exc)} ({WHERE}.url)") from None
        if raw.status in (401, 403):  # from Prometheus' own auth or a proxy in front of it
            hint = f"check the token in ${self.token_env}" if self.token_env else f"set {WHERE}.token_env"
            raise ProviderError(f"Prometheus at {self.url} refused the query ({raw.status}): {hint}")
        try:
            body = json.loads(raw.data)
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
            kind = (raw.headers.get("content-type") or "no content type").split(";")[0]
            raise ProviderError(f"{self.url} did not answer like the Prometheus HTTP API (HTTP {raw.status}, {kind} "
                                f"from POST {path}): check {WHERE}.url")
        if body["status"] == "error" or raw.status >= 300:
            error = _one_line(str(body.get("error") or f"HTTP {raw.status}"))
            raise ProviderError(f"Prometheus at {self.url} rejected the {name} query "
                                f"({body.get('errorType') or raw.status}): {error}; query: {promql}")
        return body.get("data")


# ------------------------------------------------------------------------------------------ values


def _queries(configured: Any) -> tuple[Query, ...]:
    if configured is None:
        return DEFAULT_QUERIES
    names = [q.name for q in DEFAULT_QUERIES]
    if not isinstance(configured, dict):
        raise ProviderError(f"{WHERE}.queries must be a mapping of {', '.join(names)} to PromQL templates")
    unknown = sorted(set(configured) - set(names))
    if unknown:
        raise ProviderError(f"{WHERE}.queries: unknown series {', '.join(unknown)}; known: {', '.join(names)}")
    chosen = []
    for default in DEFAULT_QUERIES:
        template = configured.get(default.name, default.template)
        # "" leaves the series out (so can null, but an overlay's null removes the key instead).
        if template is None or template == "":
            continue
        if not isinstance(template, str) or not template.strip():
            raise ProviderError(f"{WHERE}.queries.{default.name} must be a PromQL template (\"\" to leave the "
                                f"series out), not {template!r}")
        chosen.append(Query(default.name, default.unit, template.strip()))
    return tuple(chosen)


def _seconds(value: Any, name: str) -> float:
    """A positive number of seconds, or a duration such as ``90s`` or ``2m``."""
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except FaasopsError:
            pass  # said below, naming the option
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    raise ProviderError(f"{WHERE}.{name} must be a positive number of seconds or a duration such as 90s, not {value!r}")


# ------------------------------------------------------------------------------------------ hooks


@hookimpl
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    return [("metrics", TYPE, OPTIONS_SCHEMA)]


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [("metrics", TYPE, "CPU, memory and replicas per function_id from a Prometheus HTTP API (`url`)")]


@hookimpl
def faasops_metrics_source(config: ProviderConfig, project: Project) -> PrometheusMetricsSource | None:
    return PrometheusMetricsSource(project, config.options) if config.type == TYPE else None
