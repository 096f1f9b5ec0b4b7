"""Host APIs the local runtime does not offer: the error value Spin's host would give instead.

A Spin app that calls Redis, MySQL, Postgres, MQTT or the LLM API usually guards the call with
``try/except`` and falls back. Trapping would kill the whole request and skip that fallback, so
where the interface has an error result the guest gets the value Spin returns when the
component is not allowed or not configured to use it — the same value the app gets on a cluster
whose locked app (as faasops writes it) declares no such resource:

* ``fermyon:spin/redis@2`` open → ``invalid-address`` (factor-outbound-redis: host not allowed);
* ``fermyon:spin/mqtt@2``, ``fermyon:spin/mysql@2``, ``fermyon:spin/postgres@2`` and
  ``spin:postgres/postgres@3``/``@4`` open → ``connection-failed("address … is not permitted")``
  (factor-outbound-mqtt, -mysql, -pg: Postgres names ``postgres://<host>[:<port>]``);
* ``fermyon:spin/llm@2`` infer / generate-embeddings → ``invalid-input("The component does not
  have access to use '<model>'. To give the component access, …")`` (factor-llm: model not in
  ``ai_models``);
* any other function whose error has an ``access-denied`` case → ``access-denied``:
  ``wasi:keyvalue`` open (factor-key-value), ``wasi:sockets`` (no outbound sockets). (SQLite is
  supported: :mod:`faasops.runtime.sqlite`.)

The messages are Spin's, byte for byte, so an app that shows ``str(e)`` answers as it does on the
cluster; the log line below says that faasops answered for Spin.

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

def _address_not_permitted(interface: str, address: Any, *_: Any) -> Any:
    # Spin's text for an address its allow-list refuses (factor-outbound-mysql, -mqtt:
    # `address {address} is not permitted`): what the app sees on the cluster, byte for byte.
    return ("connection-failed", f"address {address} is not permitted")


def postgres_not_permitted(interface: str, address: Any, *_: Any) -> Any:
    # factor-outbound-pg parses the connection string (tokio_postgres::Config) and names the
    # first host it refuses as `postgres://<host>[:<port>]`.
    host, port = _postgres_first_host(str(address))
    if host is None:
        return ("connection-failed", f"invalid connection string: {address}")
    return ("connection-failed", f"address postgres://{host}{f':{port}' if port else ''} is not permitted")


def _postgres_first_host(address: str) -> tuple[str | None, str | None]:
    """The first TCP host of a libpq connection string (URL or key=value form) and its port."""
    if address.startswith(("postgres://", "postgresql://")):
        netloc = address.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].rpartition("@")[2]
        first = netloc.split(",")[0]
        if first.startswith("["):  # [ipv6]:port
            host, _, rest = first[1:].partition("]")
            return host or None, rest.removeprefix(":") or None
        host, _, port = first.partition(":")
        return host or None, port or None
    settings = dict(part.split("=", 1) for part in address.split() if "=" in part)
    hosts = [h for h in settings.get("host", "").split(",") if h]
    ports = [p for p in settings.get("port", "").split(",") if p]
    if not hosts:
        return None, None
    return hosts[0], ports[0] if ports else None


def _model_denied(interface: str, model: Any, *_: Any) -> Any:
    # Spin's text (factor-llm access_denied_error).
    return ("invalid-input", f"The component does not have access to use '{model}'. To give the component "
                             f"access, add '{model}' to the 'ai_models' key for the component in your spin.toml manifest")


# (interface key, function) → the error payload, from the interface name and the call's arguments.
_DENIALS: dict[tuple[str, str], Callable[..., Any]] = {
    ("fermyon:spin/redis@2", "[static]connection.open"): lambda interface, *_: "invalid-address",
    ("fermyon:spin/mqtt@2", "[static]connection.open"): _address_not_permitted,
    ("fermyon:spin/mysql@2", "[static]connection.open"): _address_not_permitted,
    ("fermyon:spin/postgres@2", "[static]connection.open"): postgres_not_permitted,
    ("spin:postgres/postgres@3", "[static]connection.open"): postgres_not_permitted,
    ("spin:postgres/postgres@4", "[static]connection.open"): postgres_not_permitted,
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
