"""Outbound HTTP and unsupported host APIs, each call inside try/except as Spin apps write them.

``/send?url=U`` forwards the request's method, ``x-test`` header and body to ``U`` with
``spin_sdk.http.send`` and answers JSON with what came back, or 502 with what it caught.
``/fallbacks`` calls Redis, MySQL, PostgreSQL, MQTT and the LLM API and answers what each raised.
"""

import json
from urllib.parse import parse_qs, urlparse

from spin_sdk import http, llm, mqtt, mysql, postgres, redis
from spin_sdk.http import Request, Response


def caught(exc: Exception) -> str:
    value = getattr(exc, "value", None)
    return f"{type(exc).__name__}({type(value).__name__}: {getattr(value, 'value', '')})"


def fallbacks() -> dict:
    calls = {
        "redis": lambda: redis.open("redis://127.0.0.1:6379"),
        "mysql": lambda: mysql.open("mysql://root@127.0.0.1/db"),
        "postgres": lambda: postgres.open("host=127.0.0.1 user=me dbname=db"),
        "mqtt": lambda: mqtt.open("mqtt://127.0.0.1:1883", "user", "secret", 30),
        "llm": lambda: llm.infer("llama2-chat", "say hello"),
        "embeddings": lambda: llm.generate_embeddings("all-minilm-l6-v2", ["hello"]),
    }
    results = {}
    for name, call in calls.items():
        try:
            call()
            results[name] = "no error"
        except Exception as exc:
            results[name] = caught(exc)
    return results


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        parsed = urlparse(request.uri)
        if parsed.path == "/fallbacks":
            return Response(200, {"content-type": "application/json"}, json.dumps(fallbacks()).encode())
        url = parse_qs(parsed.query)["url"][0]
        headers = {"x-test": request.headers.get("x-test", "")}
        try:
            upstream = http.send(Request(request.method, url, headers, request.body or None))
        except Exception as exc:
            return Response(502, {"content-type": "text/plain"}, f"caught {caught(exc)}".encode())
        answer = {"status": upstream.status, "headers": upstream.headers,
                  "body": upstream.body.decode("utf-8", "replace")}
        return Response(200, {"content-type": "application/json"}, json.dumps(answer).encode())
