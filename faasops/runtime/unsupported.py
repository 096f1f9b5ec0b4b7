"""Host APIs the local runtime does not offer: the error value Spin's host would give instead.

A Spin app that calls Redis, MySQL, Postgres, MQTT or the LLM API usually guards the call with
``try/except`` and falls back. Trapping would kill the whole request and skip that fallback, so
where the interface has an error result the guest gets the value Spin returns when the
component is not allowed or not configured to use it — the same value the app gets on a cluster
whose locked app (as faasops writes it) declares no such resource:

* ``fermyon:spin/redis@2`` open → ``invalid-address`` (factor-outbound-redis: host not allowed);
* ``fermyon:spin/mqtt@2``, ``fermyon:spin/mysql@2``, ``fermyon:spin/postgres@2`` and
  ``spin:postgres/postgres@3``/``@4`` open → ``connection-failed("address … is not permitted…")``
  (factor-outbound-mqtt, -mysql, -pg);
* ``fermyon:spin/llm@2`` infer / generate-embeddings → ``invalid-input("The component does not
  have access to use '<model>'…")`` (factor-llm: model not in ``ai_models``);
* any other function whose error has an ``access-denied`` case → ``access-denied``:
  ``wasi:keyvalue`` open (factor-key-value), ``wasi:sockets`` (no outbound sockets). (SQLite is
  supported: :mod:`faasops.runtime.sqlite`.)

Every other unsupported function — no error result, or none of the cases above (such as the
methods of Redis or MySQL connections, which no guest can hold here) — still fails the request,
naming the interface. Each
denial leaves a ``[faasops] … is not supported by faasops' local runtime`` line in the request's
log.
"""

from __future__ import annotations

from typing import Any, Callable

from wasmtime import component as wc

from faasops.runtime.host import HostImpl, RequestState, interface_key

_NOT_LOCAL = ("faasops' local runtime does not support {what} ({interface}); "
              "the app gets the error Spin gives a component not allowed to use it")


def _connection_failed(what: str) -> Callable[..., Any]:
    def error(interface: str, address: Any, *_: Any) -> Any:
        message = f"address {address} is not permitted: " + _NOT_LOCAL.format(what=what, interface=interface)
        return ("connection-failed", message)
    return error


def _model_denied(interface: str, model: Any, *_: Any) -> Any:
    # Spin's text (factor-llm access_denied_error), then why.
    return ("invalid-input", f"The component does not have access to use '{model}'. "
            + _NOT_LOCAL.format(what="the LLM API", interface=interface))


# (interface key, function) → the error payload, from the interface name and the call's arguments.
_DENIALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("fermyon:spin/redis@2", "[static]connection.open"): lambda interface, *_: "invalid-address",
    ("fermyon:spin/mqtt@2", "[static]connection.open"): _connection_failed("outbound MQTT"),
    ("fermyon:spin/mysql@2", "[static]connection.open"): _connection_failed("outbound MySQL"),
    ("fermyon:spin/postgres@2", "[static]connection.open"): _connection_failed("outbound PostgreSQL"),
    ("spin:postgres/postgres@3", "[static]connection.open"): _connection_failed("outbound PostgreSQL"),
    ("spin:postgres/postgres@4", "[static]connection.open"): _connection_failed("outbound PostgreSQL"),
    ("fermyon:spin/llm@2", "infer"): _model_denied,
    ("fermyon:spin/llm@2", "generate-embeddings"): _model_denied,
}


def _error_cases(func_type: wc.FuncType) -> set[str] | None:
    """The case names of the function's ``result<_, E>`` error, if E is a variant or enum."""
    result = func_type.result
    if not isinstance(result, wc.ResultType):
        return None
    err = result.err
    if isinstance(err, wc.VariantType):
        return {name for name, _ in err.cases}
    if isinstance(err, wc.EnumType):
        return set(err.names)
    return None


def denial(import_name: str, name: str, func_type: wc.FuncType) -> HostImpl | None:
    """A host implementation of the unsupported function ``import_name#name`` that returns
    Spin's "not allowed" error to the guest, or None when the function must trap."""
    interface = interface_key(import_name)
    make_error = _DENIALS.get((interface, name))
    if make_error is None:
        cases = _error_cases(func_type)
        if cases is None or "access-denied" not in cases:
            return None
        make_error = lambda *_: "access-denied"  # noqa: E731

    def deny(state: RequestState, *args: Any) -> Any:
        error = make_error(import_name, *args)
        shown = error if isinstance(error, str) else error[0]
        state.note(f"{import_name} ({name}) is not supported by faasops' local runtime: "
                   f"returned error {shown} to the function")
        return ("err", error)
    return deny
