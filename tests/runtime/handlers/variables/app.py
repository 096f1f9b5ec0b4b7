"""Reads Spin variables: the one named by the path, reporting errors by their type."""

from spin_sdk import http, variables
from spin_sdk.http import Request, Response
from spin_sdk.wit.types import Err


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        name = request.uri.rsplit("/", 1)[-1]
        try:
            return Response(200, {"content-type": "text/plain"}, variables.get(name).encode())
        except Err as err:
            return Response(404, {"content-type": "text/plain"}, type(err.value).__name__.encode())
