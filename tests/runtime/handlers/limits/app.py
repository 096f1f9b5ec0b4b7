"""Misbehaves on request, for the `faasops up` limit tests.

/bomb allocates memory until it fails; /header/<kind> answers with a header whose name or
value a server must not send (crlf, lf, nul, name); /status/<code> answers with that status;
anything else answers "ok".
"""

from spin_sdk import http
from spin_sdk.http import Request, Response

BAD_HEADERS = {
    "crlf": ("x-note", "a\r\nSet-Cookie: pwned=1"),
    "lf": ("x-note", "a\nSet-Cookie: pwned=1"),
    "nul": ("x-note", "a\x00b"),
    "name": ("x-bad name", "value"),
}


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        path = request.headers.get("spin-path-info", "/")
        if path == "/bomb":
            hoard = []
            while True:
                hoard.append(bytearray(8 << 20))
        if path.startswith("/header/"):
            name, value = BAD_HEADERS[path.rsplit("/", 1)[1]]
            return Response(200, {"content-type": "text/plain", name: value}, b"sent a bad header")
        if path.startswith("/status/"):
            return Response(int(path.rsplit("/", 1)[1]), {"content-type": "text/plain"}, b"odd status")
        return Response(200, {"content-type": "text/plain"}, b"ok")
