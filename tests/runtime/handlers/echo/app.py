"""Echoes the request: body as the body, method/URI/headers in x-echo-* headers."""

import json

from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        print(f"echo {request.method} {request.uri} ({len(request.body or b'')} bytes)")
        return Response(
            200,
            {
                "content-type": request.headers.get("content-type", "application/octet-stream"),
                "x-echo-method": request.method,
                "x-echo-uri": request.uri,
                "x-echo-headers": json.dumps(request.headers, sort_keys=True),
            },
            request.body,
        )
