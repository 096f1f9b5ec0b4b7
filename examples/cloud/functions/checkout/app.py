import json

from spin_sdk import http, variables
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        body = {"currency": variables.get("currency"), "path": request.uri}
        return Response(200, {"content-type": "application/json"}, json.dumps(body).encode())
