"""Counts its invocations in the default key-value store."""

from spin_sdk import http, key_value
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        with key_value.open_default() as store:
            raw = store.get("counter")
            count = int(raw) + 1 if raw is not None else 1
            store.set("counter", str(count).encode())
            keys = ",".join(store.get_keys())
        return Response(200, {"content-type": "text/plain", "x-keys": keys}, str(count).encode())
