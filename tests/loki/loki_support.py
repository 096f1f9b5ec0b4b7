"""What the Loki tests share (imported by name: several test folders have a conftest)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from faasops.model import ProviderConfig
from faasops.plugin_manager import create_plugin_manager, create_provider
from faasops.plugins.loki import LokiLogSource
from testkit.loki import LokiDouble

WS = "demo"
HELLO = {"function_id": "demo.hello", "workspace_id": "demo", "pod": "hello-5d8f7c9b6-x2x4z"}
OTHER = {"function_id": "demo.other", "workspace_id": "demo", "pod": "other-7c6b5d4f3-a1b2c"}
ELSEWHERE = {"function_id": "shop.hello", "workspace_id": "shop", "pod": "hello-6f5e4d3c2-q9w8e"}


def call(loki: LokiDouble, path: str, params: dict[str, Any] | list[tuple[str, str]] | None = None, *,
         method: str = "GET", headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, str, Any]:
    """One HTTP request to the double: (status, content type, JSON body or text)."""
    query = urllib.parse.urlencode(params or {}, doseq=True)
    url = f"{loki.url}{path}" + (f"?{query}" if query and method == "GET" else "")
    data = body if body is not None else (query.encode() if method == "POST" else None)
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if method == "POST" and body is None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, kind, raw = response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        status, kind, raw = exc.code, exc.headers.get("Content-Type", ""), exc.read()
    text = raw.decode()
    return status, kind, json.loads(text) if kind.startswith("application/json") else text


def lines_of(payload: dict[str, Any], direction: str = "backward") -> list[str]:
    """The log lines of a streams result, merged across streams in ``direction`` order."""
    entries = [(int(ts), line) for stream in payload["data"]["result"] for ts, line, *_ in stream["values"]]
    return [line for _, line in sorted(entries, reverse=direction == "backward")]


def make_source(loki: LokiDouble | str, **options: Any) -> LokiLogSource:
    """A Loki log source made the way faasops makes it: options checked against the plugin's
    schema by the plugin manager, then the plugin hook."""
    url = loki if isinstance(loki, str) else loki.url
    config = ProviderConfig("logs", "loki", {"url": url, **options})
    source = create_provider(create_plugin_manager(), None, "logs", config)  # type: ignore[arg-type]
    assert isinstance(source, LokiLogSource)
    return source
