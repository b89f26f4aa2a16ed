"""Plots of ``ctl bench`` results, for what a person would rather see than read.

matplotlib is an optional extra (``pip install -e '.[plot]'``; ``make test`` installs
it); it is imported only here, with the Agg backend (no display needed). Each function
takes the result dict its bench returned and writes one PNG.
"""

from __future__ import annotations

import itertools

from daemon.errors import UserError


def _pyplot():
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise UserError("--plot needs matplotlib: pip install -e '.[plot]' (make venv installs it)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(result: dict, path: str) -> None:
    """Draw ``result`` (from any bench) into the PNG ``path``."""
    draw = {"echo": echo, "balance": balance, "scale": scale, "sim": sim}[result["bench"]]
    plt = _pyplot()
    fig = draw(plt, result)
    try:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as exc:
        raise UserError(f"cannot write the plot {path}: {exc.strerror}") from None
    finally:
        plt.close(fig)


def echo(plt, result: dict):
    """Echo p50 (and p90 as a band) and the floor's p50 against the number of nodes."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    cases = list(dict.fromkeys(r["case"] for r in result["rows"]))  # echo per nodes-per-process, the floors
    for case in cases:
        style = ("s" if "busy" in case or "loaded" in case else "o") + ("--" if case.startswith("floor") else "-")
        label = (
            case.replace("floor: raw pyzmq relay tree", "floor p50")
            if case.startswith("floor")
            else "echo p50" + case[4:]
        )
        rows = sorted((r for r in result["rows"] if r["case"] == case and r["p50_ms"]), key=lambda r: r["nodes"])
        if rows:
            (line,) = ax.plot([r["nodes"] for r in rows], [r["p50_ms"] for r in rows], style, label=label)
            if not case.startswith("floor"):
                ax.fill_between(
                    [r["nodes"] for r in rows],
                    [r["p50_ms"] for r in rows],
                    [r["p90_ms"] for r in rows],
                    color=line.get_color(),
                    alpha=0.15,
                )
    sizes = sorted({r["nodes"] for r in result["rows"]})
    if len(sizes) > 1:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_xlabel("nodes (balanced tree)")
    ax.set_ylabel("wave latency, ms")
    ax.set_title("echo wave against the raw pyzmq floor (same shape, same pacing, same run)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


def balance(plt, result: dict):
    """The burst: imbalance over time per policy, and a node x time heatmap of work per
    CPU for the first policy."""
    runs = [r for r in result["rows"] if r.get("scenario") == "burst"]
    fig, (top, heat) = plt.subplots(2, 1, figsize=(8, 7), gridspec_kw={"height_ratios": [1, 1.2]})
    for r in runs:
        t = [p["t"] for p in r["timeline"]]
        top.plot(
            t,
            [p["imbalance"] for p in r["timeline"]],
            drawstyle="steps-post",
            label=f"{r['policy']}: makespan {r['makespan_s']:.2f} s = {r['ratio']:.2f} x LB",
        )
    if runs:
        top.axvline(runs[0]["lb_s"], color="grey", linestyle=":", label=f"LB {runs[0]['lb_s']:.2f} s")
        top.set_yscale("log")
    top.set_xlabel("seconds since submit")
    top.set_ylabel("imbalance (max / mean work per CPU)")
    top.set_title("burst on a real cluster: imbalance over time per policy")
    top.grid(True, alpha=0.3)
    top.legend(fontsize=8)
    if runs:
        r = runs[0]
        loads = [[p["load"][k] for p in r["timeline"]] for k in range(len(r["nodes"]))]
        t = [p["t"] for p in r["timeline"]]
        edges = [0.0] + [(a + b) / 2 for a, b in itertools.pairwise(t)] + [t[-1] + 0.05]
        from matplotlib.colors import LogNorm

        peak = max((x for row in loads for x in row), default=1.0) or 1.0
        floor = peak / 1000  # log colours: the first seconds' pile-up must not hide the rest
        clipped = [[max(x, floor) for x in row] for row in loads]
        mesh = heat.pcolormesh(
            edges,
            range(len(r["nodes"]) + 1),
            clipped,
            cmap="magma",
            shading="flat",
            norm=LogNorm(vmin=floor, vmax=peak),
        )
        heat.set_yticks([k + 0.5 for k in range(len(r["nodes"]))], r["nodes"], fontsize=7)
        heat.set_xlabel("seconds since submit")
        heat.set_title(f"policy {r['policy']}: work per CPU (s, log colours) by node over time")
        fig.colorbar(mesh, ax=heat)
    fig.tight_layout()
    return fig


def scale(plt, result: dict):
    """Start, stop and unique memory per idle daemon against the number of daemons."""
    rows = sorted((r for r in result["rows"] if "error" not in r), key=lambda r: r["nodes"])
    n = [r["nodes"] for r in rows]
    fig, (times, memory) = plt.subplots(1, 2, figsize=(10, 4))
    times.plot(n, [r["start_s"] for r in rows], "o-", label="ctl start")
    times.plot(n, [r["stop_s"] for r in rows], "s-", label="ctl stop")
    times.plot(n, [r["start_target_s"] for r in rows], ":", color="grey", label="target 15 s per 1,000")
    times.set_xlabel("node daemons")
    times.set_ylabel("seconds")
    times.grid(True, alpha=0.3)
    times.legend(fontsize=8)
    memory.plot(n, [r["uss_mb_median"] for r in rows], "o-", label="USS per daemon (median)")
    memory.plot(n, [r["rss_mb_median"] for r in rows], "s--", label="RSS per daemon (median)")
    memory.axhline(rows[0]["uss_target_mb"] if rows else 6.0, color="grey", linestyle=":", label="target 6 MB USS")
    memory.set_xlabel("node daemons")
    memory.set_ylabel("MB")
    memory.grid(True, alpha=0.3)
    memory.legend(fontsize=8)
    fig.suptitle(f"node daemons on one machine ({result.get('spawn', 'fork')})")
    fig.tight_layout()
    return fig


def sim(plt, result: dict):
    """Simulated burst: makespan / LB per policy (log scale)."""
    rows = [r for r in result["rows"] if r.get("case") == "burst"]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.bar([r["policy"] for r in rows], [r["ratio"] for r in rows])
    ax.set_yscale("log")
    ax.axhline(1.0, color="grey", linestyle=":")
    for k, r in enumerate(rows):
        ax.text(k, r["ratio"], f"{r['ratio']:.2f}", ha="center", va="bottom")
    if rows:
        ax.set_title(f"simulated burst, {rows[0]['nodes']} nodes, {rows[0]['tasks']} tasks: makespan / LB")
    return fig
