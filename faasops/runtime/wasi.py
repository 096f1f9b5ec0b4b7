"""WASI 0.2 host functions a Python Spin component calls: io, cli, clocks, random, preopens.

No sockets: socket functions answer ``access-denied`` (:mod:`faasops.runtime.unsupported`), as Spin does for a component
without matching ``allowed_outbound_hosts``. The filesystem (a component's ``files``, read-only)
is :mod:`faasops.runtime.filesystem`.
"""

from __future__ import annotations

import os
import time
from typing import Any

from faasops.runtime.host import HOST_API, HostTrap, RequestState, Resource, WitResult

IO_ERROR = "wasi:io/error@0.2"
IO_POLL = "wasi:io/poll@0.2"
IO_STREAMS = "wasi:io/streams@0.2"

# A guest printing in a loop must not exhaust the server's memory.
OUTPUT_CAPTURE_LIMIT = 1 << 20
# How much a non-blocking write may hand over at once; larger means fewer host calls.
WRITE_BUDGET = 1 << 20
RANDOM_LIMIT = 1 << 24

OK = ("ok", None)
CLOSED = ("err", "closed")


class IoError(Resource):
    """``wasi:io/error.error``: an opaque error with a debug string."""

    resource = "error"

    def __init__(self, message: str):
        self.message = message


class Pollable(Resource):
    """``wasi:io/poll.pollable``: ready now, or at a monotonic deadline (clock subscriptions)."""

    resource = "pollable"

    def __init__(self, ready_at_ns: int | None = None):
        self.ready_at_ns = ready_at_ns

    def ready(self) -> bool:
        return self.ready_at_ns is None or time.monotonic_ns() >= self.ready_at_ns


class InputStream(Resource):
    """``wasi:io/streams.input-stream`` over bytes already in memory (request body, stdin)."""

    resource = "input-stream"

    def __init__(self, data: bytes = b""):
        self._data = memoryview(data)
        self._pos = 0

    def read(self, length: int) -> WitResult:
        if self._pos >= len(self._data) and length > 0:
            return CLOSED
        chunk = self._data[self._pos:self._pos + length]
        self._pos += len(chunk)
        return ("ok", chunk)

    def skip(self, length: int) -> WitResult:
        result = self.read(length)
        return result if result[0] == "err" else ("ok", len(result[1]))


class OutputStream(Resource):
    """``wasi:io/streams.output-stream`` appending to a buffer (stdout/stderr or a body)."""

    resource = "output-stream"

    def __init__(self, sink: bytearray, limit: int | None = None):
        self.sink = sink
        self.limit = limit
        self.closed = False
        self._truncated = False

    def write(self, data: Any) -> WitResult:
        if self.closed:
            return CLOSED
        if self.limit is not None and len(self.sink) + len(data) > self.limit:
            if not self._truncated:
                self._truncated = True
                self.sink += b"\n[output truncated]\n"
            return OK
        self.sink += data
        return OK


def _blocking_wait(state: RequestState, pollables: list[Pollable]) -> None:
    """Sleep until one of ``pollables`` is ready, but never past the request's deadline."""
    if any(p.ready() for p in pollables):
        return
    deadlines = [p.ready_at_ns for p in pollables if p.ready_at_ns is not None]
    if not deadlines:
        # Only pollables that nothing but the guest itself can make ready (see
        # outgoing_http.ResponsePollable): waiting would spin until the time limit.
        raise HostTrap("guest waits on pollables that can never become ready")
    wake_ns = min(deadlines)
    delay = (wake_ns - time.monotonic_ns()) / 1e9
    if delay <= 0:
        return
    if time.monotonic() + delay > state.deadline:
        raise HostTrap("request exceeded its time limit while sleeping")
    time.sleep(delay)


# -- wasi:io ---------------------------------------------------------------------------------

@HOST_API.func(IO_ERROR, "[method]error.to-debug-string")
def _error_to_debug_string(state: RequestState, err: IoError) -> str:
    return err.message


@HOST_API.func(IO_POLL, "[method]pollable.ready")
def _pollable_ready(state: RequestState, pollable: Pollable) -> bool:
    return pollable.ready()


@HOST_API.func(IO_POLL, "[method]pollable.block")
def _pollable_block(state: RequestState, pollable: Pollable) -> None:
    _blocking_wait(state, [pollable])


@HOST_API.func(IO_POLL, "poll")
def _poll(state: RequestState, pollables: list[Pollable]) -> list[int]:
    if not pollables:
        raise HostTrap("wasi:io/poll.poll called with an empty list")
    ready = [i for i, p in enumerate(pollables) if p.ready()]
    if not ready:
        _blocking_wait(state, pollables)
        ready = [i for i, p in enumerate(pollables) if p.ready()]
    return ready


@HOST_API.func(IO_STREAMS, "[method]input-stream.read")
@HOST_API.func(IO_STREAMS, "[method]input-stream.blocking-read")
def _input_read(state: RequestState, stream: InputStream, length: int) -> WitResult:
    return stream.read(length)


@HOST_API.func(IO_STREAMS, "[method]input-stream.skip")
@HOST_API.func(IO_STREAMS, "[method]input-stream.blocking-skip")
def _input_skip(state: RequestState, stream: InputStream, length: int) -> WitResult:
    return stream.skip(length)


@HOST_API.func(IO_STREAMS, "[method]input-stream.subscribe")
@HOST_API.func(IO_STREAMS, "[method]output-stream.subscribe")
def _stream_subscribe(state: RequestState, stream: Resource) -> Pollable:
    return Pollable()


@HOST_API.func(IO_STREAMS, "[method]output-stream.check-write")
def _output_check_write(state: RequestState, stream: OutputStream) -> WitResult:
    return CLOSED if stream.closed else ("ok", WRITE_BUDGET)


@HOST_API.func(IO_STREAMS, "[method]output-stream.write")
@HOST_API.func(IO_STREAMS, "[method]output-stream.blocking-write-and-flush")
def _output_write(state: RequestState, stream: OutputStream, contents: bytes) -> WitResult:
    return stream.write(contents)


@HOST_API.func(IO_STREAMS, "[method]output-stream.flush")
@HOST_API.func(IO_STREAMS, "[method]output-stream.blocking-flush")
def _output_flush(state: RequestState, stream: OutputStream) -> WitResult:
    return CLOSED if stream.closed else OK


@HOST_API.func(IO_STREAMS, "[method]output-stream.write-zeroes")
@HOST_API.func(IO_STREAMS, "[method]output-stream.blocking-write-zeroes-and-flush")
def _output_write_zeroes(state: RequestState, stream: OutputStream, length: int) -> WitResult:
    return stream.write(bytes(length))


@HOST_API.func(IO_STREAMS, "[method]output-stream.splice")
@HOST_API.func(IO_STREAMS, "[method]output-stream.blocking-splice")
def _output_splice(state: RequestState, dst: OutputStream, src: InputStream,
                   length: int) -> WitResult:
    tag, chunk = src.read(length)
    if tag == "err":
        return CLOSED
    written = dst.write(chunk)
    return written if written[0] == "err" else ("ok", len(chunk))


# -- wasi:cli --------------------------------------------------------------------------------

@HOST_API.func("wasi:cli/environment@0.2", "get-environment")
def _environment(state: RequestState) -> list[Any]:
    return list(state.environment)


@HOST_API.func("wasi:cli/environment@0.2", "get-arguments")
def _no_arguments(state: RequestState) -> list[Any]:
    return []


@HOST_API.func("wasi:cli/environment@0.2", "initial-cwd")
@HOST_API.func("wasi:cli/terminal-stdin@0.2", "get-terminal-stdin")
@HOST_API.func("wasi:cli/terminal-stdout@0.2", "get-terminal-stdout")
@HOST_API.func("wasi:cli/terminal-stderr@0.2", "get-terminal-stderr")
def _nothing(state: RequestState) -> None:
    return None


@HOST_API.func("wasi:cli/exit@0.2", "exit")
def _exit(state: RequestState, status: tuple[str, Any]) -> None:
    raise HostTrap(f"guest exited ({'success' if status[0] == 'ok' else 'failure'}) "
                   "without sending a response")


@HOST_API.func("wasi:cli/stdin@0.2", "get-stdin")
def _stdin(state: RequestState) -> InputStream:
    return InputStream()


@HOST_API.func("wasi:cli/stdout@0.2", "get-stdout")
def _stdout(state: RequestState) -> OutputStream:
    return OutputStream(state.stdout, OUTPUT_CAPTURE_LIMIT)


@HOST_API.func("wasi:cli/stderr@0.2", "get-stderr")
def _stderr(state: RequestState) -> OutputStream:
    return OutputStream(state.stderr, OUTPUT_CAPTURE_LIMIT)


# -- wasi:clocks -----------------------------------------------------------------------------

@HOST_API.func("wasi:clocks/monotonic-clock@0.2", "now")
def _monotonic_now(state: RequestState) -> int:
    return time.monotonic_ns()


@HOST_API.func("wasi:clocks/monotonic-clock@0.2", "resolution")
def _monotonic_resolution(state: RequestState) -> int:
    return 1


@HOST_API.func("wasi:clocks/monotonic-clock@0.2", "subscribe-instant")
def _subscribe_instant(state: RequestState, when: int) -> Pollable:
    return Pollable(when)


@HOST_API.func("wasi:clocks/monotonic-clock@0.2", "subscribe-duration")
def _subscribe_duration(state: RequestState, duration: int) -> Pollable:
    return Pollable(time.monotonic_ns() + duration)


@HOST_API.func("wasi:clocks/wall-clock@0.2", "now")
def _wall_now(state: RequestState) -> dict[str, int]:
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    return {"seconds": seconds, "nanoseconds": nanos}


@HOST_API.func("wasi:clocks/wall-clock@0.2", "resolution")
def _wall_resolution(state: RequestState) -> dict[str, int]:
    return {"seconds": 0, "nanoseconds": 1}


# -- wasi:random -----------------------------------------------------------------------------

@HOST_API.func("wasi:random/random@0.2", "get-random-bytes")
@HOST_API.func("wasi:random/insecure@0.2", "get-insecure-random-bytes")
def _random_bytes(state: RequestState, length: int) -> bytes:
    if length > RANDOM_LIMIT:
        raise HostTrap(f"guest asked for {length} random bytes (limit {RANDOM_LIMIT})")
    return os.urandom(length)


@HOST_API.func("wasi:random/random@0.2", "get-random-u64")
@HOST_API.func("wasi:random/insecure@0.2", "get-insecure-random-u64")
def _random_u64(state: RequestState) -> int:
    return int.from_bytes(os.urandom(8), "little")


@HOST_API.func("wasi:random/insecure-seed@0.2", "insecure-seed")
def _insecure_seed(state: RequestState) -> tuple[int, int]:
    return (_random_u64(state), _random_u64(state))


# -- wasi:filesystem: the preopens and descriptors are faasops.runtime.filesystem's --------------

@HOST_API.func("wasi:filesystem/types@0.2", "filesystem-error-code")
def _no_filesystem_error_code(state: RequestState, err: IoError) -> None:
    return None
