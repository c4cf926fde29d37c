"""Plots of lab outputs: each lab 00 shows its key result as a figure drawn from the numbers its run printed.

An outputs.yaml entry with `plot: <kind>` gets outputs/<name>.png, drawn by `draw(kind, text, path)`
from the text that run printed (the same run, so the figure and the block beside it always agree).
`just docs-outputs` draws it when it writes the text; a kind reads the format of one command's output:

  dashboard   `just experiment super4096`: held-out loss and the share of experts used or dead, against E
  gating      `just experiment gating`: max_load per gating mode and aux weight, mean and range over seeds
  compression `just experiment compression`: each method's perplexity ratio over the seeds, before and
              after recovery, against the pre-registered bars
  fair        `just experiment fair`: val loss of each model under each data contract
"""

from __future__ import annotations

import re
from pathlib import Path

from .catalog import CourseError

NUM = r"-?\d[\d,]*\.?\d*"


def _figure(cols: int, width: float = 5.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, cols, figsize=(width * cols, 3.6), squeeze=False)
    return plt, fig, axes[0]


def dashboard(text: str, path: Path) -> None:
    rows = re.findall(rf"^\s*E=(\d+)\s+[\d,]+\s+({NUM})->({NUM})\s+\d+->\d+\s+{NUM}\s+{NUM}\s+{NUM}\s+"
                      rf"(\d+)->(\d+)\s+(\d+)->(\d+)", text, re.M)
    if not rows:
        raise ValueError("no dashboard rows (E=..)")
    E = [int(r[0]) for r in rows]
    plt, fig, (loss, routing) = _figure(2)
    loss.plot(E, [float(r[2]) for r in rows], "o-", label="after training")
    loss.set(xscale="log", xlabel="routed experts E (same token budget)", ylabel="held-out loss",
             title="the loss improves as E grows")
    routing.plot(E, [int(r[4]) / e for r, e in zip(rows, E)], "o-", label="E_eff / E (worst layer)")
    routing.plot(E, [int(r[6]) / (2 * e) for r, e in zip(rows, E)], "s--", label="dead experts / 2E")
    routing.set(xscale="log", xlabel="routed experts E", ylabel="share of the experts", ylim=(0, 1),
                title="while the routed system shrinks")
    routing.legend()
    _save(plt, fig, path)


def gating(text: str, path: Path) -> None:
    rows = []
    for line in text.splitlines():
        m = re.match(rf"^(sparse-top1|sparse-top2|ste-top1|soft)\s+({NUM})\s+{NUM}\s+{NUM}\s", line)
        if m and "[" not in line:
            cells = re.findall(rf"({NUM}) \(({NUM})-({NUM})\)", line)  # val_loss, cv, max_load, e_eff, dead
            rows.append((m.group(1), m.group(2), *(float(x) for x in cells[2])))
    if not rows:
        raise ValueError("no gating rows")
    E = int(re.search(r"E=(\d+)", text).group(1))
    modes, auxes = list(dict.fromkeys(r[0] for r in rows)), list(dict.fromkeys(r[1] for r in rows))
    plt, fig, (ax,) = _figure(1, 7.0)
    width = 0.8 / len(auxes)
    for j, aux in enumerate(auxes):
        xs = [i + (j - (len(auxes) - 1) / 2) * width for i, mode in enumerate(modes)]
        pick = [next(r for r in rows if r[0] == mode and r[1] == aux) for mode in modes]
        mean = [r[2] for r in pick]
        ax.bar(xs, mean, width, label=f"aux {aux}",
               yerr=[[m - r[3] for m, r in zip(mean, pick)], [r[4] - m for m, r in zip(mean, pick)]], capsize=3)
    ax.axhline(1 / E, color="gray", ls=":", label=f"even share 1/E = {1 / E:.2f}")
    ax.set_xticks(range(len(modes)), modes)
    ax.set(ylabel="max_load (mean, min-max over seeds)", ylim=(0, 1),
           title="without the aux loss the top-1 modes pile onto one expert")
    ax.legend()
    _save(plt, fig, path)


def compression(text: str, path: Path) -> None:
    ratios: dict[str, list[float]] = {}
    labels = ("average", "average +rec", "ternary", "ternary +rec", "prune", "prune +rec")
    for line in text.splitlines():
        if line.split()[:1] == ["same"] and line.split()[1].isdigit():
            for label, x in zip(labels, re.findall(r"(\d+\.\d+)x", line)):
                ratios.setdefault(label, []).append(float(x))
    if not ratios:
        raise ValueError("no per-seed rows for init 'same'")
    plt, fig, (ax,) = _figure(1, 7.0)
    for i, label in enumerate(labels):
        ax.scatter([i] * len(ratios[label]), ratios[label], alpha=0.6)
    for bar, name in ((1.5, "STRICT"), (3.0, "LENIENT"), (10.0, "CATASTROPHIC")):
        ax.axhline(bar, color="gray", ls=":")
        ax.text(len(labels) - 0.5, bar, f" {name} {bar:g}x", va="bottom", ha="right", color="gray")
    ax.set_xticks(range(len(labels)), labels, rotation=20)
    ax.set(yscale="log", ylim=(0.8, 14), ylabel="perplexity / original's (each dot a seed)",
           title="averaging fails LENIENT on every seed; pruning stays STRICT")
    _save(plt, fig, path)


def fair(text: str, path: Path) -> None:
    rows = re.findall(rf"^(\S+)\s+[\d,]+\s+[\d,]+\s+(totalDN|activeDN)\s+[\d,]+\s+\d+\s+{NUM}\s+{NUM}\s+({NUM})\s+"
                      rf"({NUM})\s+\d+$", text, re.M)
    if not rows:
        raise ValueError("no model rows")
    models = list(dict.fromkeys(r[0] for r in rows))
    plt, fig, (ax,) = _figure(1, 7.0)
    for j, contract in enumerate(("totalDN", "activeDN")):
        pick = [next(r for r in rows if r[0] == m and r[1] == contract) for m in models]
        xs = [i + (j - 0.5) * 0.4 for i in range(len(models))]
        ax.bar(xs, [float(r[2]) for r in pick], 0.4, yerr=[float(r[3]) / 2 for r in pick], capsize=3,
               label=f"{contract}: tokens = gamma x {'P_total' if contract == 'totalDN' else 'P_active'}")
    ax.set_xticks(range(len(models)), models)
    ax.set(ylabel="val loss (mean over seeds; bar: spread / 2)",
           title="the same three models under two data contracts")
    ax.legend()
    _save(plt, fig, path)


def _save(plt, fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


KINDS = {"dashboard": dashboard, "gating": gating, "compression": compression, "fair": fair}


def draw(kind: str, text: str, path: Path) -> Path:
    """Draw outputs/<name>.png from an output's text; a clear error if the text is not what `kind` reads."""
    if kind not in KINDS:
        raise CourseError(f"plot: {kind!r} is not a kind of plot (known: {', '.join(KINDS)})")
    try:
        KINDS[kind](text, path)
    except (ValueError, StopIteration, IndexError, AttributeError) as e:
        raise CourseError(f"plot {kind} of {path.stem}: the output is not in the format it reads ({e})") from None
    return path
