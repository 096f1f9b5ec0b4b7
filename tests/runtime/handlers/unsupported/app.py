"""Calls host APIs the local runtime does not offer: /llm (Spin LLM), /http (outgoing HTTP to a host
no allowed_outbound_hosts entry allows). Neither call is caught, so spin-sdk answers 500."""

from spin_sdk import http, llm
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        if request.uri.endswith("/llm"):
            result = llm.infer("llama2-chat", "say hello")
            return Response(200, {"content-type": "text/plain"}, result.text.encode())
        if request.uri.endswith("/http"):
            upstream = http.send(Request("GET", "https://example.com/", {}, None))
            return Response(200, {"content-type": "text/plain"}, upstream.body)
        return Response(200, {"content-type": "text/plain"}, b"nothing unsupported here")
