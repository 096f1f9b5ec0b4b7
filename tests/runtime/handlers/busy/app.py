"""Never finishes: /spin loops on the CPU, /sleep sleeps for a minute."""

import time

from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        if request.uri.endswith("/sleep"):
            time.sleep(60)
        else:
            while True:
                pass
        return Response(200, {"content-type": "text/plain"}, b"unreachable")
