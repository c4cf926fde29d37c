"""What a run prints and draws: step lines, the routing health table, the load plot.

The step line keeps the form of source note 003, "Break 00":

    step=  100  main=2.018  aux=1.310  cv=45%  expert_counts=[ 540 191 119 126 ]

where expert_counts are the tokens each expert got in that step's batch, for the MoE layer whose
load is most uneven (L and its block's index are printed when there are several). With more than 16 experts the
list shows the 8 busiest and a count of the rest. Under a capacity (--capacity-factor) the line ends with
each MoE layer's dropped assignments, % of that step's T*K: `dropped=[ 1.2% 0.4% ]`.
"""

from __future__ import annotations

import math

from .telemetry import HealthSummary, LayerHealth

MAX_LISTED_EXPERTS = 16


def format_counts(counts: list[float]) -> str:
    ints = [int(round(c)) for c in counts]
    if len(ints) <= MAX_LISTED_EXPERTS:
        return "[ " + " ".join(f"{c:4d}" for c in ints) + " ]"
    top = sorted(ints, reverse=True)[:8]
    return "[ " + " ".join(f"{c:4d}" for c in top) + f" ... ] (8 busiest of {len(ints)})"


def step_line(step: int, main: float, aux: float, counts: list[float] | None, cv: float | None,
              layer: int | None, width: int, drop_pcts: list[float] | None = None) -> str:
    s = f"step={step:{width}d}  main={main:.3f}  aux={aux:.3f}"
    if counts is not None:
        where = f" L{layer}" if layer is not None else ""
        s += f"  cv={cv:4.0f}%{where}  expert_counts={format_counts(counts)}"
    if drop_pcts is not None:
        s += "  dropped=[ " + " ".join(f"{d:.1f}%" for d in drop_pcts) + " ]"
    return s


def health_table(health: list[LayerHealth], top_k: int) -> str:
    """One row per MoE layer; under a capacity, three more columns: capacity, kept_max, drop%."""
    capped = any(h.capacity for h in health)
    head = (f"{'layer':>5}  {'cv%':>6}  {'cv_rand%':>8}  {'max_load':>8}  {'e_eff':>6}  {'dead':>4}  "
            f"{'tok_ent':>7}  {'w_sum':>5}  {'w_min':>6}  {'w_max':>6}")
    rows = [head + (f"  {'capacity':>8}  {'kept_max':>8}  {'drop%':>6}" if capped else "")]
    for h in health:
        rows.append(f"{h.layer:>5}  {h.cv_pct:6.1f}  {h.cv_random_pct:8.1f}  {h.max_load:8.3f}  {h.e_eff:6.1f}  "
                    f"{h.dead:4d}  {h.router_entropy_mean:7.3f}  {h.weight_sum:5.2f}  "
                    f"{h.weight_min:6.2f}  {h.weight_max:6.2f}"
                    + (f"  {h.capacity:8d}  {h.kept_max:8d}  {h.drop_pct:6.2f}" if capped else ""))
    return "\n".join(rows)


def summary_line(s: HealthSummary, capped: bool = False) -> str:
    return (f"mean_cv={s.mean_cv_pct:.1f}%  max_load={s.max_load:.3f}  min_entropy={s.min_entropy:.3f}  "
            f"E_eff={s.e_eff:.1f}  dead={s.dead}" + (f"  dropped={s.drop_pct:.2f}%" if capped else ""))


def traffic_table(rows: list[dict]) -> str:
    """Per rank: rows (token copies) sent to and received from other ranks' experts, the bytes it sent,
    then, on `time:` lines (a run's own speed), the all-to-all's share of the training time."""
    lines = [f"{'rank':>4}  {'sent':>10}  {'received':>10}  {'bytes_sent':>14}"]
    lines += [f"{r['rank']:>4}  {r['sent']:>10,.0f}  {r['received']:>10,.0f}  {r['bytes']:>14,.0f}" for r in rows]
    lines += [f"time: rank {r['rank']}: all-to-all {r['a2a_seconds']:.2f} s of {r['train_seconds']:.2f} s training "
              f"({100 * r['a2a_share']:.0f}%)" for r in rows]
    return "\n".join(lines)


def plot_run(path: str, history: list[dict], log: list[dict], title: str, layers: list[int],
             capped: bool = False) -> None:
    """Losses, CV% per layer, and per-expert load share per layer over the run, in one PNG; layers: the
    MoE layers' block indices; capped (a run under a capacity): the dropped % per layer too."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_layers = len(log[0]["counts"]) if log and log[0].get("counts") else 0
    rows = 2 + n_layers + capped
    fig, axes = plt.subplots(rows, 1, figsize=(8, 3 + 2.2 * (rows - 1)), squeeze=False)
    axes = axes[:, 0]
    steps = [h["step"] for h in history]
    axes[0].plot(steps, [h["main"] for h in history], label="main loss", lw=1)
    axes[0].plot(steps, [h["aux"] for h in history], label="aux (1 = balanced)", lw=1)
    axes[0].set_ylabel("loss")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title(title, fontsize=9)
    for i, block in enumerate(layers):
        axes[1].plot(steps, [h["cv"][i] for h in history], lw=1, label=f"MoE layer {block}")
    if n_layers:
        axes[1].plot(steps, [h["cv_random"] for h in history], "k--", lw=0.8, label="random assignment")
        axes[1].legend(loc="upper left", fontsize=8)
    axes[1].set_ylabel("load CV %")
    log_steps = [entry["step"] for entry in log]
    for i in range(n_layers):
        ax = axes[2 + i]
        shares = []
        for entry in log:
            c = entry["counts"][i]
            tot = sum(c) or 1.0
            shares.append([x / tot for x in c])
        E = len(shares[0])
        if E > MAX_LISTED_EXPERTS:  # the 15 busiest experts at the end, the rest as one band
            order = sorted(range(E), key=lambda e: -shares[-1][e])
            top = order[: MAX_LISTED_EXPERTS - 1]
            bands = [[s[e] for s in shares] for e in top]
            bands.append([1 - sum(s[e] for e in top) for s in shares])
            labels = [f"e{e}" for e in top] + [f"other {E - len(top)}"]
        else:
            bands = [[s[e] for s in shares] for e in range(E)]
            labels = [f"e{e}" for e in range(E)]
        colors = matplotlib.colormaps["tab20"].colors
        ax.stackplot(log_steps, bands, labels=labels, linewidth=0, colors=colors[: len(bands)])
        ax.axhline(1 / E, color="k", lw=0.6, ls=":")
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"L{layers[i]} load share")
        if len(labels) <= MAX_LISTED_EXPERTS:
            ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=6, ncol=math.ceil(len(labels) / 16))
    if capped:
        ax = axes[-1]
        for i, block in enumerate(layers):
            ax.plot(steps, [h["drop_pct"][i] for h in history], lw=1, label=f"MoE layer {block}")
        ax.set_ylabel("dropped %")
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
