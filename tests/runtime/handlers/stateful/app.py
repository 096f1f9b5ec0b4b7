"""Counts requests in a module global: a fresh instance per request always answers 1."""

from spin_sdk import http
from spin_sdk.http import Request, Response

SEEN = []


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        SEEN.append(request.uri)
        SEEN.extend(["x" * 1000] * 1000)  # dirty a good chunk of the heap, too
        return Response(200, {"content-type": "text/plain"}, str(len(SEEN) // 1001).encode())
