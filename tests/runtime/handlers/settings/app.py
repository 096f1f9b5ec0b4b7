"""Answers with its environment variable GREETING and its Spin variable `audience`."""

import os

from spin_sdk import http, variables
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        text = f"{os.environ.get('GREETING', '(unset)')}, {variables.get('audience')}!"
        return Response(200, {"content-type": "text/plain"}, text.encode())
