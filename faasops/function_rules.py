"""Rules a function's settings must meet together, beyond the shape of each value — shared by the
manifest checks (:mod:`faasops.manifest.project_builder`) and the Builder API models
(:mod:`faasops.builder_service.models`), so both refuse exactly the same functions.

Each rule takes plain values and returns the message of what is wrong, or ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from faasops.oci import spin_variable_name


def max_below_min(low: int, high: int) -> str | None:
    """autoscaling ``max`` must be at least ``min``."""
    return f"max ({high}) must be at least min ({low})" if high < low else None


def missing_request(kind: str, target: int | None, request: str | None) -> str | None:
    """A ``kind`` (cpu, memory) utilization target needs a ``kind`` request: utilization is usage
    over request, so without one the HPA can't scale and KEDA's admission webhook refuses the
    ScaledObject."""
    if target is None or request is not None:
        return None
    return (
        f"autoscaling on {kind} utilization needs resources.requests.{kind} (utilization is a percentage of the "
        f"request; without one the HPA can't scale and KEDA refuses the ScaledObject); set resources.requests.{kind}"
    )


def secret_clashes(secrets: Iterable[str], variables: Iterable[str], env: Mapping[str, str] | Iterable[str]) \
        -> list[tuple[int, str]]:
    """(index of the secret, message) for every secret that clashes: declared twice, the name of
    an env key, or the Spin variable (its name in lower case) of a variable or of another secret —
    Spin would refuse the app, or one value would silently replace the other."""
    variable_names = set(variables)
    env_names = set(env)
    seen: dict[str, int] = {}
    spin_names: dict[str, str] = {}
    clashes: list[tuple[int, str]] = []
    for index, name in enumerate(secrets):
        if name in seen:
            clashes.append((index, f"secret '{name}' is already declared (secrets[{seen[name]}]); each secret sets its own variable"))
            continue
        seen[name] = index
        if name in env_names:
            clashes.append((index, f"secret '{name}' would set the same environment variable as env.{name}; rename one of them"))
        spin_name = spin_variable_name(name)
        if spin_name in variable_names:
            clashes.append((index, f"secret '{name}' becomes the Spin variable '{spin_name}', which variables.{spin_name} "
                                   "already declares; rename one of them"))
        first = spin_names.setdefault(spin_name, name)
        if first != name:
            clashes.append((index, f"secret '{name}' and secret '{first}' both become the Spin variable '{spin_name}'; "
                                   "rename one of them"))
    return clashes


#: Kubernetes refuses an object whose annotations (keys and values) add up to more than 256 KiB.
MAX_ANNOTATION_BYTES = 256 * 1024


def annotations_too_large(annotations: Mapping[str, str]) -> str | None:
    """Kubernetes' limit on the total size of an object's annotations (the SpinApp's and its pods')."""
    size = sum(len(key.encode("utf-8", "surrogatepass")) + len(value.encode("utf-8", "surrogatepass"))
               for key, value in annotations.items())
    if size <= MAX_ANNOTATION_BYTES:
        return None
    return f"the annotations add up to {size} bytes; Kubernetes allows at most {MAX_ANNOTATION_BYTES} (256 KiB)"
