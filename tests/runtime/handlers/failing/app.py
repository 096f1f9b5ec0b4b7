"""Raises on /boom, answers normally otherwise."""

import sys

from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        if request.uri.endswith("/boom"):
            print("about to fail", file=sys.stderr)
            raise ValueError("kaboom from the guest")
        return Response(200, {"content-type": "text/plain"}, b"still alive")
