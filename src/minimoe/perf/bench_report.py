"""What `just bench` prints and draws from its cells: the tables, the course's speed goals, the plot.

The goals are the course's statements about speed (docs/performance/ shows them judged on the
recorded run); `goals` judges them on whatever cells a run measured.
"""

from __future__ import annotations

import math
import statistics
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


def pair_ratio(a: dict, b: dict) -> tuple[float, float, float]:
    """Column a's time over column b's, round by round (pairs measured at the same moment): the median of
    the pairs and its 95% confidence interval. Columns recorded without their rounds give their medians'
    ratio, no spread."""
    ta, tb = a.get("times_ms"), b.get("times_ms")
    if not ta or not tb or len(ta) != len(tb):
        r = a["ms"] / b["ms"]
        return r, r, r
    return median_ci([x / y for x, y in zip(ta, tb)])


def median_ci(v: list[float]) -> tuple[float, float, float]:
    """(median, low, high): the median of v and a 95% confidence interval for it that assumes nothing of the
    noise's shape: the j-th smallest and the j-th largest value, j the largest for which fewer than j of n
    values fall under the true median with a chance of 2.5% or less (Binomial(n, 1/2)). More rounds narrow
    it (25 rounds: the 8th to the 18th value); with 5 values or fewer it is their whole range."""
    s, n = sorted(v), len(v)
    j = 1
    while j < (n + 1) // 2 and sum(math.comb(n, i) for i in range(j + 1)) / 2 ** n <= 0.025:  # P(X < j + 1)
        j += 1
    return statistics.median(s), s[j - 1], s[n - j]


def _spread(r: tuple[float, float, float]) -> str:
    return f"{r[0]:.2f}x ({r[1]:.2f}-{r[2]:.2f})"


PAIRED = ("balanced", "grouped", "hf-grouped", "hf-eager", "dense")  # minimoe is compared with these, pair by pair


def pairs_table(cells: list[dict], columns: list[str]) -> str:
    """minimoe's time over each other column's, the median of the rounds' pairs and its 95% interval."""
    names = [n for n in PAIRED if n in columns]
    lines = [f"{'T':>5} {'E':>5} {'K':>2} | " + " ".join(f"{'/ ' + n:>20}" for n in names)]
    for cell in cells:
        cols = cell["columns"]
        row = f"{cell['tokens']:5d} {cell['experts']:5d} {cell['top_k']:2d} | "
        mine = cols.get("minimoe", {})
        row += " ".join(f"{_spread(pair_ratio(mine, cols[n])) if 'ms' in mine and 'ms' in cols.get(n, {}) else '-':>20}"
                        for n in names)
        lines.append(row)
    return "\n".join(lines)


LIMITS = {"G1": 1.3, "G2": 1.5, "G3": 1.0, "G4": 3.0, "G5": 1.1}


def verdict(rows: list[tuple], limit: float) -> tuple[tuple, str]:
    """The worst row (its spread's top highest) and the verdict: met when every row's whole spread is at
    or under the limit, NOT met when some row's whole spread is over it, else unsure (a spread crosses it)."""
    worst = max(rows, key=lambda r: (r[0][2], r[0][0]))
    if all(r[0][2] <= limit for r in rows):
        return worst, "met"
    over = [r for r in rows if r[0][1] > limit]
    if over:
        return max(over, key=lambda r: r[0][0]), "NOT met"
    return worst, "unsure: the spread crosses the limit"


def cell_goals(c: dict) -> list[tuple[str, str]]:
    """The goals judged cell by cell that cover this cell, as (goal, the column minimoe is compared with)."""
    T, E, K = c["tokens"], c["experts"], c["top_k"]
    pairs = [("G1", "dense")] if E <= 64 else [("G2", "dense")] if E == 512 else []
    pairs += [("G3", hf) for hf in ("hf-eager", "hf-grouped")]
    pairs += [("G5", "balanced")] if T * K >= 8 * E else []
    return [(g, other) for g, other in pairs if "ms" in c["columns"].get(other, {})]


def undecided(c: dict) -> list[str]:
    """The goals whose interval in this cell crosses their limit: ones more rounds may settle."""
    mine = c["columns"].get("minimoe", {})
    if "ms" not in mine:
        return []
    out = []
    for g, other in cell_goals(c):
        _, low, high = pair_ratio(mine, c["columns"][other])
        if low <= LIMITS[g] < high:
            out.append(f"{g} vs {other}")
    return out


def goals(cells: list[dict]) -> str:
    """The course's speed goals, each judged on the cells that were run, from the pairs of rounds:

    G1  minimoe within 1.3x of dense for E <= 64      G2  within 1.5x of dense at E = 512
    G3  faster than every Hugging Face column that ran, in every cell
    G4  E = 4096, K = 7 within 3x of E = 64, K = 7 at the same T (the cost of many experts)
    G5  minimoe within 1.1x of the balanced floor wherever T*K/E >= 8 (experts of 8 rows or more)

    A ratio is the median of the rounds' pairs with its 95% confidence interval (median_ci); a goal is
    met only when every cell's whole interval is on the right side of the limit. G4 compares two cells,
    measured apart: its interval runs from the low end of one over the high end of the other and back.

    Beside each worst cell, the same measure taken on the balanced column (for G4: balanced at
    E = 4096 over minimoe at E = 64): where that floor is already over the limit, no dispatch
    that runs each expert as its own matmul can meet the goal on this machine.
    """
    def col(c, name):
        return c["columns"].get(name, {})

    def ms(c, name):
        return col(c, name).get("ms")

    def at(c):
        return f"T={c['tokens']} E={c['experts']} K={c['top_k']}"

    def interval(c, name):
        return median_ci(col(c, name).get("times_ms") or [ms(c, name)])

    mine = [c for c in cells if ms(c, "minimoe") and ms(c, "dense")]
    by = {(c["tokens"], c["experts"], c["top_k"]): c for c in mine}

    def vs(c, other, floor=True):  # (minimoe / other with its spread, balanced / other, where)
        f = pair_ratio(col(c, "balanced"), col(c, other))[0] if floor and ms(c, "balanced") else None
        return pair_ratio(col(c, "minimoe"), col(c, other)), f, at(c)

    def g4(c):
        a, b = interval(c, "minimoe"), interval(by[(c["tokens"], 64, 7)], "minimoe")
        floor = ms(c, "balanced") / b[0] if ms(c, "balanced") else None
        return (a[0] / b[0], a[1] / b[2], a[2] / b[1]), floor, f"T={c['tokens']} K=7"

    def covered(goal):  # (cell, other column) for every cell the goal covers
        return [(c, other) for c in mine for g, other in cell_goals(c) if g == goal]

    g1 = [vs(c, other) for c, other in covered("G1")]
    g2 = [vs(c, other) for c, other in covered("G2")]
    g3 = [(pair_ratio(col(c, "minimoe"), col(c, hf)), None, f"{at(c)} vs {hf}") for c, hf in covered("G3")]
    g4s = [g4(c) for (T, E, K), c in by.items() if E == 4096 and K == 7 and (T, 64, 7) in by]
    g5 = [vs(c, other, floor=False) for c, other in covered("G5")]
    lines = [f"{'goal':<52} {'worst cell: median (95% interval)':<52} {'floor':>6}  verdict"]
    for name, rows, limit in (("G1 within 1.3x of dense, E <= 64", g1, LIMITS["G1"]),
                              ("G2 within 1.5x of dense, E = 512", g2, LIMITS["G2"]),
                              ("G3 faster than Hugging Face's block (ratio < 1)", g3, LIMITS["G3"]),
                              ("G4 E = 4096 within 3x of E = 64, K = 7", g4s, LIMITS["G4"]),
                              ("G5 within 1.1x of the balanced floor, T*K/E >= 8", g5, LIMITS["G5"])):
        if not rows:
            lines.append(f"{name:<52} {'not measured (no such cell)':<52} {'-':>6}  -")
            continue
        (r, floor, where), v = verdict(rows, limit)
        lines.append(f"{name:<52} {f'{_spread(r)} at {where}':<52} "
                     f"{f'{floor:.2f}x' if floor is not None else '-':>6}  {v}")
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
