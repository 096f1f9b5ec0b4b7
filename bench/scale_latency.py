"""Injected network latency for the scale benchmark: fault proxies (:mod:`testkit.faultproxy`)
in front of moto, the registry and the Kubernetes emulator, each holding every request for a
fixed time per service before forwarding it.

``python bench/scale_latency.py --moto URL --registry URL --kube URL [--ms SERVICE=MS,…]``
prints one JSON line ``{"moto": URL, "registry": URL, "kube": URL}`` and serves until SIGTERM.
The proxies run in this process of their own, so their work never takes the GIL from the
Kubernetes emulator in the benchmark's driver.

Default delays (added to each request by the proxy; the figures issue 18 asks for, with ECR's
API taken as the registry's): Kubernetes API 5 ms, DynamoDB 5 ms, S3 15 ms, registry 20 ms, ECR
API 20 ms. They are on the quick side of what a client in the same AWS region sees: DynamoDB is
sold as "single-digit millisecond" per request, the Kubernetes scalability SLO allows up to 1 s
at the 99th percentile for a single-object mutating call, and S3 and ECR requests commonly take
tens of milliseconds. Change them with ``--latency-ms`` of ``bench/scale.py``.

moto's requests are told apart by their ``X-Amz-Target`` header (DynamoDB, ECR); the others
are S3's.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the test services (testkit)

from testkit.faultproxy import FaultProxy, delay  # noqa: E402

DEFAULT_MS = {"kubernetes": 5.0, "dynamodb": 5.0, "s3": 15.0, "registry": 20.0, "ecr": 20.0}
SERVICES = tuple(DEFAULT_MS)


@dataclass(frozen=True)
class Latency:
    """Per-service delays in milliseconds (all 0: no injected latency)."""

    ms: tuple[tuple[str, float], ...]

    @classmethod
    def parse(cls, text: str) -> "Latency":
        """``default`` or ``SERVICE=MS,…`` (unnamed services keep the default)."""
        delays = dict(DEFAULT_MS)
        if text.strip() not in ("", "default"):
            for part in text.split(","):
                name, _, value = part.partition("=")
                if name.strip() not in DEFAULT_MS:
                    raise ValueError(f"unknown service {name.strip()!r} (one of {', '.join(SERVICES)})")
                delays[name.strip()] = float(value)
        return cls(tuple(delays.items()))

    def of(self, service: str) -> float:
        return dict(self.ms)[service]

    def describe(self) -> str:
        return ", ".join(f"{name} {ms:g} ms" for name, ms in self.ms)


def start_proxies(moto_url: str, registry_url: str, kube_url: str, latency: Latency) -> dict[str, FaultProxy]:
    """The three proxies, started, with one delay rule per service."""
    proxies = {"moto": FaultProxy(moto_url), "registry": FaultProxy(registry_url), "kube": FaultProxy(kube_url)}
    moto = proxies["moto"]
    moto.inject(delay(latency.of("dynamodb") / 1000, forward=True), header=("X-Amz-Target", r"^DynamoDB_"))
    moto.inject(delay(latency.of("ecr") / 1000, forward=True), header=("X-Amz-Target", r"^AmazonEC2ContainerRegistry"))
    moto.inject(delay(latency.of("s3") / 1000, forward=True))  # the rest: S3's REST requests
    proxies["registry"].inject(delay(latency.of("registry") / 1000, forward=True))
    proxies["kube"].inject(delay(latency.of("kubernetes") / 1000, forward=True))
    for proxy in proxies.values():
        proxy.start()
    return proxies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moto", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--kube", required=True)
    parser.add_argument("--ms", default="default", help="SERVICE=MS,… (services: %(choices)s)".replace(
        "%(choices)s", ", ".join(SERVICES)))
    args = parser.parse_args(argv)
    proxies = start_proxies(args.moto, args.registry, args.kube, Latency.parse(args.ms))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(json.dumps({name: proxy.url for name, proxy in proxies.items()}), flush=True)
    stopped.wait()
    for proxy in proxies.values():
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
