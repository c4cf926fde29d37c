"""What `just bench` prints and draws from its cells: the tables, the course's speed goals, the plot.

The goals are the course's statements about speed (docs/performance/ shows them judged on the
recorded run); `goals` judges them on whatever cells a run measured.
"""

from __future__ import annotations

from pathlib import Path


def _fmt(c: dict, what: str) -> str:
    if "skipped" in c:
        return "skipped"
    if what == "time":
        return f"{c['ms']:8.1f} ms" + (f" {c['ratio']:5.2f}x" if c.get("ratio") else "       ")
    mem = f"{c['peak_mb']:6.0f} MB" if c.get("peak_mb") is not None else "       "
    return f"{c['tokens_per_s'] / 1e3:7.0f}k/s {mem}"


def table(cells: list[dict], columns: list[str], what: str) -> str:
    w = 16 if what == "time" else 18
    lines = [f"{'T':>5} {'E':>5} {'K':>2} | " + " ".join(f"{n:>{w}}" for n in columns) + "  others  busiest"]
    for cell in cells:
        row = f"{cell['tokens']:5d} {cell['experts']:5d} {cell['top_k']:2d} | "
        row += " ".join(f"{_fmt(cell['columns'][n], what):>{w}}" for n in columns)
        flag = "!" if cell["others_cores"] > 0.1 else " "
        busiest = cell.get("busiest_over_mean")
        lines.append(row + f"  {cell['others_cores']:4.2f}{flag}" + (f"  {busiest:5.1f}x" if busiest else ""))
    return "\n".join(lines)


def goals(cells: list[dict]) -> str:
    """The course's speed goals, each judged on the cells that were run (its worst cell is shown):

    G1  minimoe within 1.3x of dense for E <= 64      G2  within 1.5x of dense at E = 512
    G3  faster than every Hugging Face column that ran, in every cell
    G4  E = 4096, K = 7 within 3x of E = 64, K = 7 at the same T (the cost of many experts)

    Beside each worst cell, the same measure taken on the balanced column (for G4: balanced at
    E = 4096 over minimoe at E = 64): where that floor is already over the limit, no dispatch
    that runs each expert as its own matmul can meet the goal on this machine.
    """
    def ms(c, name):
        return c["columns"].get(name, {}).get("ms")

    def at(c):
        return f"T={c['tokens']} E={c['experts']} K={c['top_k']}"

    mine = [c for c in cells if ms(c, "minimoe") and ms(c, "dense")]
    by = {(c["tokens"], c["experts"], c["top_k"]): c for c in mine}

    def vs_dense(c):  # (minimoe / dense, balanced / dense, where)
        floor = ms(c, "balanced") / ms(c, "dense") if ms(c, "balanced") else None
        return ms(c, "minimoe") / ms(c, "dense"), floor, at(c)

    def g4(c):
        e64 = ms(by[(c["tokens"], 64, 7)], "minimoe")
        return ms(c, "minimoe") / e64, (ms(c, "balanced") / e64 if ms(c, "balanced") else None), f"T={c['tokens']} K=7"

    g1 = [vs_dense(c) for c in mine if c["experts"] <= 64]
    g2 = [vs_dense(c) for c in mine if c["experts"] == 512]
    g3 = [(ms(c, "minimoe") / ms(c, hf), None, f"{at(c)} vs {hf}") for c in mine for hf in ("hf-eager", "hf-grouped")
          if ms(c, hf)]
    g4s = [g4(c) for (T, E, K), c in by.items() if E == 4096 and K == 7 and (T, 64, 7) in by]
    lines = [f"{'goal':<48} {'worst cell':<44} {'floor':>6}  verdict"]
    for name, rows, limit in (("G1 within 1.3x of dense, E <= 64", g1, 1.3),
                              ("G2 within 1.5x of dense, E = 512", g2, 1.5),
                              ("G3 faster than Hugging Face's block (ratio < 1)", g3, 1.0),
                              ("G4 E = 4096 within 3x of E = 64, K = 7", g4s, 3.0)):
        if not rows:
            lines.append(f"{name:<48} {'not measured (no such cell)':<44} {'-':>6}  -")
            continue
        v, floor, where = max(rows, key=lambda r: r[0])
        verdict = "met" if v <= limit else "NOT met"
        lines.append(f"{name:<48} {f'{v:.2f}x at {where}':<44} "
                     f"{f'{floor:.2f}x' if floor is not None else '-':>6}  {verdict}")
    return "\n".join(lines) + (
        "\nfloor: the same measure with the balanced column (experts alone, equal tokens, no routing) in minimoe's"
        "\nplace; a floor over the limit puts the goal out of reach of per-expert matmuls on this machine")


def plot(path: Path, cells: list[dict], columns: list[str]) -> None:
    """Time / dense against E: one panel per (T, K), rows T, columns K; one line per column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Ts = sorted({c["tokens"] for c in cells}, reverse=True)
    Ks = sorted({c["top_k"] for c in cells})
    fig, axes = plt.subplots(len(Ts), len(Ks), figsize=(3.6 * len(Ks), 3.0 * len(Ts)), squeeze=False,
                             sharex=True, sharey=True)
    for (i, T), (j, K) in ((a, b) for a in enumerate(Ts) for b in enumerate(Ks)):
        ax = axes[i][j]
        mine = sorted((c for c in cells if (c["tokens"], c["top_k"]) == (T, K)), key=lambda c: c["experts"])
        for name in columns:
            pts = [(c["experts"], c["columns"][name].get("ratio")) for c in mine]
            pts = [(e, r) for e, r in pts if r]
            if pts and name != "dense":
                ax.plot(*zip(*pts), marker="o", label=name, ls=":" if name == "router" else "-")
        ax.axhline(1.0, color="grey", lw=1, ls="--", label="dense (floor)")
        ax.set(xscale="log", yscale="log", title=f"T={T}, K={K}")
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("experts E")
    for row in axes:
        row[0].set_ylabel("time / dense FFN")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
