"""Run the emulator in the foreground: ``python -m testkit.kubeapi --port 6443``."""

from __future__ import annotations

import argparse
import sys

from .server import KubeEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testkit.kubeapi",
                                     description="Kubernetes API server emulator for tests.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one, printed on start)")
    parser.add_argument("--token", default=None, help="require this bearer token (default: accept any)")
    parser.add_argument("--tls", action="store_true",
                        help="serve HTTPS with a self-signed certificate (kubectl only sends tokens over TLS)")
    parser.add_argument("--kubeconfig", default=None, help="write a kubeconfig for this server here")
    parser.add_argument("--no-spinkube", action="store_true", help="don't preinstall the SpinKube CRDs")
    parser.add_argument("--no-keda", action="store_true", help="don't preinstall KEDA's ScaledObject CRD")
    parser.add_argument("--spinapp-ready", action="store_true",
                        help="mark every SpinApp ready on write, standing in for spin-operator")
    parser.add_argument("--no-webhooks", action="store_true",
                        help="don't enforce spin-operator's and KEDA's admission webhooks")
    parser.add_argument("--no-operator", action="store_true",
                        help="don't create a Deployment for each SpinApp as spin-operator does")
    parser.add_argument("--namespace-termination", type=float, default=0.0, metavar="SECONDS",
                        help="keep a deleted namespace Terminating this long before it is gone (default 0)")
    args = parser.parse_args(argv)
    emulator = KubeEmulator(port=args.port, token=args.token, host=args.host, tls=args.tls,
                            preinstall_spinkube=not args.no_spinkube, preinstall_keda=not args.no_keda,
                            spinapp_ready=args.spinapp_ready, spin_operator_webhook=not args.no_webhooks,
                            keda_webhook=not args.no_webhooks, spin_operator=not args.no_operator,
                            namespace_termination=args.namespace_termination)
    emulator.start()
    if args.kubeconfig:
        emulator.write_kubeconfig(args.kubeconfig)
    print(f"kube API emulator serving on {emulator.url}", flush=True)
    try:
        while emulator._thread is not None and emulator._thread.is_alive():
            emulator._thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
