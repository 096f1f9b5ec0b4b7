"""A spin-sdk 3.4.1 handler that overrides ``handle`` to stream its body chunk by chunk.

Every path writes ``first\\n``, then waits on an outbound GET to the URL in the ``x-gate``
header (a test server that answers only when the test lets it), sleeps a little, and writes
``second:<what the gate answered>\\n``:

* ``/``: no Content-Length (the server frames it in chunks);
* ``/length``: with the Content-Length of both chunks (``x-gate`` must answer 8 bytes);
* ``/overflow``: a Content-Length of 4, then more than 4 bytes;
* ``/short``: a Content-Length of 100, then fewer bytes and ``finish``;
* ``/crash``: raises after the first chunk;
* ``/unfinished``: returns after the first chunk without finishing the body;
* ``/spin``: after the first chunk, loops until the time limit stops it.
"""

import time

from spin_sdk import http
from spin_sdk.http import Request, send
from spin_sdk.wit.imports.types import Fields, OutgoingBody, OutgoingResponse, ResponseOutparam
from spin_sdk.wit.types import Ok


class IncomingHandler(http.IncomingHandler):
    def handle(self, request, response_out):
        path = request.path_with_query()
        gate = dict((name, str(value, "utf-8")) for name, value in request.headers().entries()).get("x-gate", "")
        headers = [("content-type", b"text/plain")]
        if path == "/length":
            headers.append(("content-length", b"%d" % len(b"first\nsecond:released\n")))
        elif path == "/overflow":
            headers.append(("content-length", b"4"))
        elif path == "/short":
            headers.append(("content-length", b"100"))
        response = OutgoingResponse(Fields.from_list(headers))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        stream = body.write()
        stream.blocking_write_and_flush(b"first\n")
        if path == "/crash":
            raise RuntimeError("failed after the first chunk")
        if path == "/unfinished":
            return
        if path == "/spin":
            while True:
                pass
        answer = send(Request("GET", gate, {}, None)).body or b""
        time.sleep(0.05)
        stream.blocking_write_and_flush(b"second:" + answer + b"\n")
        stream.__exit__(None, None, None)
        OutgoingBody.finish(body, None)
