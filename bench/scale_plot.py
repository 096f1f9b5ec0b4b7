"""Growth curves of the scale benchmark: time and API calls against the number of functions, at
each latency measured, beside the per-object-refresh and kubectl baselines.

``python bench/scale_plot.py RESULTS.json OUT.png`` (``bench/scale.py`` calls
:func:`plot_growth` itself unless ``--no-plot``). Needs matplotlib (the ``plot`` extra).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

SERVICES = ("dynamodb", "s3", "ecr", "registry", "kubernetes")
LINE_STYLES = {"none": "-", "injected": "--"}
# One colour per compared tool, the same in every panel.
COLOURS = {"faasops plan (CLI)": "tab:blue", "faasops plan (in process)": "tab:cyan",
           "per-object refresh plan": "tab:orange", "kubectl diff --server-side": "tab:red",
           "faasops apply, N new": "tab:green", "faasops apply, all changed (resources)": "tab:blue",
           "faasops apply, all changed (env)": "tab:purple", "kubectl apply --server-side": "tab:red"}

Series = Callable[[dict[str, Any]], float | None]


def _calls(run: dict[str, Any] | None) -> float | None:
    if not run:
        return None
    return float(sum(sum(run["calls"][service].values()) for service in SERVICES))


def _seconds(*path: str) -> Series:
    def get(size: dict[str, Any]) -> float | None:
        value: Any = size
        for key in path:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return float(value)
    return get


def _all_changed(change: str, what: str) -> Series:
    def get(size: dict[str, Any]) -> float | None:
        applied = (size.get("apply_all_changed") or {}).get(change)
        if not applied:
            return None
        return float(applied["seconds"]["total"]) if what == "seconds" else _calls(applied)
    return get


PLAN_TIME: dict[str, Series] = {
    "faasops plan (CLI)": _seconds("plan_cli", "seconds"),
    "faasops plan (in process)": _seconds("plan", "seconds", "plan"),
    "per-object refresh plan": _seconds("plan_per_object", "seconds", "plan"),
    "kubectl diff --server-side": _seconds("kubectl_diff", "seconds"),
}
APPLY_TIME: dict[str, Series] = {
    "faasops apply, N new": _seconds("apply_new", "seconds", "total"),
    "faasops apply, all changed (resources)": _all_changed("resources", "seconds"),
    "faasops apply, all changed (env)": _all_changed("env", "seconds"),
    "kubectl apply --server-side": _seconds("kubectl_apply", "seconds"),
}
CALLS: dict[str, Series] = {
    "faasops plan (in process)": lambda size: _calls(size.get("plan")),
    "per-object refresh plan": lambda size: _calls(size.get("plan_per_object")),
    "kubectl diff --server-side": _seconds("kubectl_diff", "kube_server_requests"),
    "faasops apply, N new": lambda size: _calls(size.get("apply_new")),
    "faasops apply, all changed (resources)": _all_changed("resources", "calls"),
    "faasops apply, all changed (env)": _all_changed("env", "calls"),
}


def plot_growth(results: dict[str, Any], out: Path) -> Path:
    """Write the three panels (no-op plan time, apply time, API calls or requests) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[str, list[dict[str, Any]]] = results.get("runs") or {"none": results.get("sizes", [])}
    figure, axes = plt.subplots(1, 3, figsize=(18, 5.8), constrained_layout=True)
    panels = ((axes[0], "No-op plan", "seconds", PLAN_TIME), (axes[1], "Apply", "seconds", APPLY_TIME),
              (axes[2], "API calls (kubectl: requests served)", "calls", CALLS))
    for ax, title, unit, series in panels:
        for name, get in series.items():
            for label, sizes in runs.items():
                points = [(size["functions"], get(size)) for size in sizes]
                points = [(n, v) for n, v in points if v is not None and v > 0]
                if not points:
                    continue
                ax.plot([n for n, _ in points], [v for _, v in points], LINE_STYLES.get(label, ":"),
                        marker="o", markersize=4, color=COLOURS.get(name), label=f"{name} [{label}]")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("functions (N)")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    delays = ", ".join(f"{name} {ms:g} ms" for name, ms in (results.get("latency_ms") or {}).items())
    figure.suptitle("faasops scale benchmark — solid: no injected latency; dashed: injected "
                    f"({delays})" if delays else "faasops scale benchmark", fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python bench/scale_plot.py RESULTS.json OUT.png")
    plot_growth(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
