"""Where the MoE layer's time goes beyond its floor (`just bench-gap`, `python -m minimoe.perf.gap`).

Goal G5 of `just bench` holds the layer within 1.1x of `balanced`, the experts alone as batched
matmuls on equal token counts, wherever T*K/E >= 8. This splits that gap in two, on the same
cells, inputs and routing as `just bench`:

    minimoe   the layer, --experts-impl auto, as `just bench` times it (G5's measure: minimoe / balanced)
    ragged    the layer in the ragged layout end to end (ragged.py): sort, gather, grouped matmuls, combine
    experts   the same experts on the layer's own rows, already sorted by expert: ragged without its
              sort, gathers and combine
    balanced  the floor: every expert as one batched matmul on ceil(T*K/E) rows

    ragged / balanced  =  ragged / experts    the dispatch: sorting, gathering and combining T*K rows
                        x experts / balanced  one grouped matmul per weight on the real counts, where
                                              the floor runs one batched matmul

Each ratio is the median of pairs taken within a round, with its 95% interval, as in `just bench`.
Then a few calls of `ragged` and `balanced` run under torch.profiler, and every operation's self CPU
time is put under the part of the layer that called it (expert matmuls, activations, sort and
counts, gather and combine, autograd): that names the operations behind each factor, and counts the
matmul calls (torch._grouped_mm on a CPU runs one aten::mm per expert and weight, the floor one aten::bmm
per weight). The profiler's own cost inflates operations that run many times (thousands of small mm
calls at E = 512), so the split ratios come from the untimed rounds, and the profile only names.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from ..experts import Experts, swiglu
from .bench import _quiet_stderr, _timed, add_grid_arguments, draw_inputs, keep_freed_memory
from .bench_report import pair_ratio
from .layouts import auto_forward, choose_layout
from .ragged import ragged_forward

COLUMNS = ("minimoe", "ragged", "experts", "balanced")
FACTORS = (("minimoe", "balanced"), ("ragged", "experts"), ("experts", "balanced"))  # G5's ratio, then its two parts
# The parts of the layer an operation's time is put under: the first whose pattern appears in the name of
# the operation or of an operation that called it (outermost caller first).
PARTS = (
    ("gather and combine", ("_Gather", "_Combine")),
    ("expert matmuls", ("grouped_mm", "GroupedMm", "bmm", "Bmm", "aten::matmul", "aten::mm", "MmBackward",
                        "ExpandBackward", "UnsafeViewBackward", "ViewBackward", "ReshapeAlias")),
    ("expert activations", ("silu", "Silu", "aten::mul", "MulBackward")),
    ("sort and counts", ("sort", "bincount", "cumsum", "index_put", "arange", "floor_divide", "aten::div",
                         "empty_like")),
    ("autograd", ("AccumulateGrad", "detach", "aten::zeros", "aten::fill_")),
)
OTHER = "other"
PROFILED = ("ragged", "balanced")
MATMUL_OPS = ("aten::mm", "aten::bmm")


def g5_cells(tokens: list[int], experts: list[int], top_k: list[int]) -> list[tuple[int, int, int]]:
    """The (T, E, K) among these that goal G5 covers: T*K/E >= 8, every expert eight rows or more on average."""
    return [(T, E, K) for T in tokens for K in top_k for E in experts if K <= E and T * K >= 8 * E]


def make_columns(T: int, E: int, K: int, D: int, F: int, seed: int = 0) -> tuple[dict, dict]:
    """name -> one forward + backward of that column; and what the cell is (the layout auto takes, the
    busiest expert's count over the mean). Inputs, routing and weights are `just bench`'s for this cell."""
    x_TD, g_TD, router = draw_inputs(T, E, K, D, seed)
    r = router(x_TD.detach())
    ids_TK, w_TK = r.ids_TK, r.weights_TK.detach().requires_grad_(True)
    experts = Experts(E, D, F)
    count_E = torch.bincount(ids_TK.reshape(-1), minlength=E)
    expert_A, order_A = ids_TK.reshape(-1).sort(stable=True)
    end_E = count_E.cumsum(0)
    x_AD = x_TD.detach().index_select(0, order_A // K).requires_grad_(True)  # the layer's rows, sorted by expert
    g_AD = torch.randn(T * K, D)
    C = -(-T * K // E)
    x_ECD, g_ECD = torch.randn(E, C, D, requires_grad=True), torch.randn(E, C, D)

    def run(f, grad):
        def call():
            y = f()
            y.backward(grad)
            for p in (x_TD, w_TK, x_AD, x_ECD, *experts.parameters()):
                p.grad = None
            return y.detach()
        return call

    cols = {
        "minimoe": run(lambda: auto_forward(x_TD, ids_TK, w_TK, experts), g_TD),
        "ragged": run(lambda: ragged_forward(x_TD, ids_TK, w_TK, experts), g_TD),
        "experts": run(lambda: experts(x_AD, end_E), g_AD),
        "balanced": run(lambda: swiglu(x_ECD, experts.w_gate_EDF, experts.w_up_EDF, experts.w_down_EFD), g_ECD),
    }
    C_max = int(count_E.max())
    layout, _ = choose_layout(count_E, T * K, C_max, x_TD, experts.w_gate_EDF[0].numel())
    return cols, {"layout": layout, "busiest_over_mean": C_max / (T * K / E)}


def part_of(names: list[str]) -> str:
    """The part of the layer for an operation whose callers, outermost first, then itself, are `names`."""
    for name in names:
        for part, patterns in PARTS:
            if any(p in name for p in patterns):
                return part
    return OTHER


def profile_parts(cols: dict, names: tuple[str, ...] = PROFILED, calls: int = 3) -> dict:
    """Run the columns `names` under torch.profiler, one call each in turn, `calls` times: for each, every
    operation's self CPU time per call, put under its part; the matmul operations' calls per call and
    microseconds each; and the profiled wall time per call (against the unprofiled rounds': the profiler's cost)."""
    from torch.profiler import ProfilerActivity, profile

    out = {}
    for name in names:
        out[name] = {"parts_ms": {part: 0.0 for part, _ in PARTS} | {OTHER: 0.0}, "profiled_ms": 0.0,
                     "mm": {op: [0, 0.0] for op in MATMUL_OPS}}
    for _ in range(calls):
        for name in names:
            with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
                t = time.perf_counter()
                cols[name]()
                out[name]["profiled_ms"] += 1e3 * (time.perf_counter() - t) / calls
            for ev in prof.events():
                chain, e = [], ev
                while e is not None:
                    chain.append(e.name)
                    e = e.cpu_parent
                out[name]["parts_ms"][part_of(chain[::-1])] += ev.self_cpu_time_total / 1e3 / calls
                if ev.name in MATMUL_OPS:
                    out[name]["mm"][ev.name][0] += 1
                    out[name]["mm"][ev.name][1] += ev.self_cpu_time_total
    for p in out.values():
        p["matmul"] = {op: {"calls": n / calls, "us_each": us / n} for op, (n, us) in p.pop("mm").items() if n}
    return out


def gap_cell(T: int, E: int, K: int, args) -> dict:
    """Time the four columns on one cell in alternating rounds, check they agree, then profile two of them."""
    cols, info = make_columns(T, E, K, args.width, args.hidden)
    ys = {name: cols[name]() for name in COLUMNS}  # (the first call: warm-up, and the check)
    diff = float((ys["minimoe"] - ys["ragged"]).abs().max())
    if diff > 1e-4:
        raise AssertionError(f"T={T} E={E} K={K}: minimoe and ragged differ by {diff:g}")
    for name in COLUMNS:
        for _ in range(args.warmup):
            cols[name]()
    times = {name: [] for name in COLUMNS}
    for r in range(args.repeats):
        for name in (COLUMNS if r % 2 == 0 else COLUMNS[::-1]):
            times[name].append(_timed(cols[name]))
    out = {name: {"ms": 1e3 * statistics.median(t), "times_ms": [round(1e3 * s, 4) for s in t]}
           for name, t in times.items()}
    ratios = {f"{a}/{b}": pair_ratio(out[a], out[b]) for a, b in FACTORS}
    profiles = profile_parts(cols, PROFILED, args.profile_calls)
    return {"tokens": T, "experts": E, "top_k": K, **info, "rounds": args.repeats, "columns": out,
            "ratios": ratios, "profiles": profiles}


def _spread(r) -> str:
    return f"{r[0]:.2f}x ({r[1]:.2f}-{r[2]:.2f})"


def table(cells: list[dict]) -> str:
    """The split: G5's ratio, the dispatch's factor and the grouped matmuls' factor, cell by cell."""
    head = (f"{'T':>5} {'E':>5} {'K':>2} {'T*K/E':>6} {'layout':>7} {'busiest':>7} | "
            + " ".join(f"{a + ' / ' + b:>21}" for a, b in FACTORS))
    lines = [head]
    for c in cells:
        tke = c["tokens"] * c["top_k"] // c["experts"]
        lines.append(f"{c['tokens']:5d} {c['experts']:5d} {c['top_k']:2d} {tke:6d} "
                     f"{c['layout']:>7} {c['busiest_over_mean']:7.2f} | "
                     + " ".join(f"{_spread(c['ratios'][f'{a}/{b}']):>21}" for a, b in FACTORS))
    return "\n".join(lines)


def parts_table(cells: list[dict]) -> str:
    """The profile: ms per call of each part, for ragged and balanced, and their matmul calls."""
    names = [p for p, _ in PARTS] + [OTHER]
    lines = [f"{'T':>5} {'E':>5} {'K':>2} {'column':>8} | " + " ".join(f"{n:>18}" for n in names)
             + " | matmul calls per call, us each"]
    for c in cells:
        for col in PROFILED:
            p = c["profiles"][col]
            mm = ", ".join(f"{op.split('::')[1]} {m['calls']:.0f} x {m['us_each']:.0f}"
                           for op, m in p["matmul"].items())
            lines.append(f"{c['tokens']:5d} {c['experts']:5d} {c['top_k']:2d} {col:>8} | "
                         + " ".join(f"{p['parts_ms'][n]:18.2f}" for n in names) + f" | {mm}")
    return "\n".join(lines)


def summary(cells: list[dict]) -> dict:
    """Each factor's lowest and highest median over the cells, and the cells where it is over G5's 1.1."""
    out = {}
    for a, b in FACTORS:
        meds = [c["ratios"][f"{a}/{b}"][0] for c in cells]
        out[f"{a}/{b}"] = {"low": min(meds), "high": max(meds),
                           "over_1.1": sum(1 for c in cells if c["ratios"][f"{a}/{b}"][1] > 1.1)}
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench-gap", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_grid_arguments(p)
    p.add_argument("--repeats", type=int, default=25, help="rounds per cell, every column once a round")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per column after the first (checking) one")
    p.add_argument("--profile-calls", type=int, default=3, help="profiled calls per column (ragged, balanced)")
    p.add_argument("--keep-freed-memory", action="store_true",
                   help="glibc keeps freed memory for reuse instead of returning it to the kernel")
    p.add_argument("--out", default="runs/bench", help="folder for gap.json; '' = none")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    small = [f"--{k.replace('_', '-')} {getattr(args, k)}" for k in ("repeats", "profile_calls", "threads", "width",
                                                                    "hidden") if getattr(args, k) < 1]
    if small:
        print(f"error: {', '.join(small)}: give whole numbers >= 1")
        return 2
    cells_wanted = g5_cells(args.tokens, args.experts, args.top_k)
    if not cells_wanted:
        print("error: none of these cells has T*K/E >= 8, the cells goal G5 covers: choose more tokens or fewer "
              "experts")
        return 2
    torch.set_num_threads(args.threads)
    if args.keep_freed_memory and (why := keep_freed_memory()):
        print(f"error: {why}")
        return 2
    print(f"G5's cells (T*K/E >= 8), forward + backward, {args.threads} threads, D={args.width}, F={args.hidden}, "
          f"{args.repeats} rounds a cell in alternating order; each ratio is the median of the rounds' pairs (95% "
          "interval); busiest = the busiest expert's tokens / the mean", flush=True)
    t0, cells = time.perf_counter(), []
    for i, (T, E, K) in enumerate(cells_wanted, 1):
        cells.append(gap_cell(T, E, K, args))
        print(f"[{i}/{len(cells_wanted)}] " + table(cells[-1:]).splitlines()[-1].strip(), flush=True)
    print("\nminimoe / balanced is G5's measure; ragged / experts: the dispatch (sort, gathers, combine); "
          "experts / balanced: grouped matmuls on the real counts against batched ones on equal counts")
    print(table(cells))
    print("\nms per call under torch.profiler, by part of the layer (self CPU time; the profiler's cost included):")
    print(parts_table(cells))
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"torch": torch.__version__, "threads": args.threads, "width": args.width, "hidden": args.hidden,
                "repeats": args.repeats, "profile_calls": args.profile_calls, "machine": platform.machine(),
                "load_average": os.getloadavg(), "keep_freed_memory": args.keep_freed_memory}
        (out / "gap.json").write_text(json.dumps({"meta": meta, "cells": cells, "summary": summary(cells)}, indent=1))
        print(f"wrote {out / 'gap.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
