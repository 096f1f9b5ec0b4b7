"""What a Spin app sees of its request, and the shapes of app that depend on it.

``/multiply`` routes on ``request.uri`` exactly, as public Spin apps do (POST "6 7" → "42");
``/str-body`` returns a ``str`` body (not bytes), a common mistake; ``/utf8-header`` answers a
UTF-8 response header; ``/status/<code>`` answers that status; anything else echoes
``request.uri`` and ``request.headers`` as JSON.
"""

import json

from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        if request.uri == "/multiply":
            a, b = (request.body or b"").decode().split()
            return Response(200, {"content-type": "text/plain"}, str(int(a) * int(b)).encode())
        if request.uri == "/str-body":
            return Response(200, {"content-type": "text/plain"}, "text, not bytes")
        if request.uri == "/utf8-header":
            return Response(200, {"x-uni": "héllo wörld"}, b"ok")
        if request.uri.startswith("/status/"):
            return Response(int(request.uri[len("/status/"):]), {"content-type": "text/plain"}, b"as asked")
        seen = {"uri": request.uri, "headers": request.headers}
        return Response(200, {"content-type": "application/json"}, json.dumps(seen).encode())
