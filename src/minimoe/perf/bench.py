"""The dispatch benchmark (`just bench`, `python -m minimoe.perf.bench`): one MoE layer's experts, timed
forward + backward beside its floor and beside other implementations of the same computation.

Columns, all given the same tokens x_TD, the same routing (ids_TK, weights_TK) and the same
expert weights, so their outputs agree (checked on every cell):

    minimoe     --experts-impl auto (layouts.py): sorted by expert, then grouped matmuls (ragged.py's
                gathering backward), or batched matmuls over padded rows or tiers, whichever the cost
                model prices cheapest
    grouped     --experts-impl grouped, the learner's default (moe_block.moe_forward): sorted by
                expert, one grouped matmul per weight
    dense       a SwiGLU FFN of hidden K*F with no routing: the same active FLOPs, the floor
    balanced    the experts alone, as batched matmuls with every expert given the same ceil(T*K/E)
                tokens: no router, sort, gather, padding or combine. The floor of any implementation
                that runs each expert as its own matmul with this machine's matmul library; a goal
                whose limit is below it is out of reach of the dispatch, whatever it does. Where
                T*K < E every expert still gets one token: more rows than the layer computes, so
                there (T=1024, E=4096, K=1 or 2) it is no floor
    hf-eager    transformers' MixtralSparseMoeBlock experts, "eager" backend (a loop over hit experts)
    hf-grouped  the same, "grouped_mm" backend (sort by expert + torch._grouped_mm), chosen as in
                transformers v5 by the config's `experts_implementation`
                (https://huggingface.co/docs/transformers/experts_interface)
    loop        moe_forward_reference: for each expert, mask its tokens, run it, index_add back
    router      the router alone (logits, softmax, top-k); every MoE layer adds it, the dense one not
    triton      (--device cuda only) --experts-impl triton: moe_forward with the experts' grouped
                matmuls in the Triton kernel (grouped_mm_triton.py), beside torch's grouped matmul

--device cuda runs every column on the GPU (inputs drawn as on the CPU, then moved), times each call
between two torch.cuda.synchronize() and reads peak memory from torch.cuda's counters; --dtype
bfloat16 runs the layers in bf16 (the router's softmax stays fp32). A column whose first call fails
(an operation this device or dtype lacks) is skipped with the error's first line.

What is measured:
    time        --repeats rounds after --warmup calls; in a round every column runs once, the order
                reversed from one round to the next, so a column never always runs first or right after
                the same neighbour. time = the median of a column's rounds. Where a goal's interval
                (below) crosses its limit in a cell, the cell runs --repeats more rounds, and again,
                up to --max-repeats: the borderline cells get the rounds that settle them.
    ratio       a ratio of two columns is taken within each round (a pair: same moment of the machine)
                and reported as the median of the pairs with its spread, a 95% confidence interval of that
                median (bench_report.median_ci: order statistics, no assumption on the noise), which more
                rounds narrow (ratio = time / dense's; the goals compare minimoe with the other columns
                the same way, and call a goal met only when every interval is under its limit).
                With --passes N the whole grid runs N times and each cell pools its rounds.
    peak MB     torch's own allocations during one more call, from torch.profiler's memory events
                (bytes allocated minus freed, in op order), so it includes the new gradients.
    others      CPU cores that other processes used while the cell ran (/proc/stat minus this
                process). Two torch threads on two cores slow down many-fold when anything else
                runs; cells with others > 0.1 are flagged with '!'.
    busiest     the routing's imbalance: the busiest expert's tokens over the mean, T*K/E. The
                router is freshly drawn (near-uniform scores, as at the start of training), yet
                with many experts a few of them still get several times the mean; padding or
                per-expert matmuls pay for it, the balanced column does not.

A loop column (hf-eager, loop) whose single call would take longer than --skip-over seconds is
skipped, judged from its warmup calls or ahead of time from the same column at the previous E
(the loops grow linearly with E); the table says so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from ..config import ConfigError
from ..experts import Experts, swiglu
from ..moe_block import DenseFFN, moe_forward, moe_forward_reference
from ..router import Router
from . import implementation
from .bench_report import goals, pair_ratio, pairs_table, plot, table, undecided
from .layouts import auto_forward

COLUMNS = ("minimoe", "grouped", "dense", "balanced", "hf-eager", "hf-grouped", "loop", "router")
GPU_COLUMNS = ("triton",)  # run with --device cuda only
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
LOOPS = ("hf-eager", "loop")  # columns whose time grows with E: skipped ahead of time when too slow


def _cpu_seconds() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of this process)."""
    try:
        with open("/proc/stat") as f:
            v = [int(n) for n in f.readline().split()[1:]]
        busy = (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        busy = float("nan")
    t = os.times()
    return busy, t.user + t.system


def keep_freed_memory() -> str | None:
    """Make glibc serve big tensors from its heap and keep what is freed (mallopt), for every column.

    By default each tensor over 32 MB gets fresh pages from the kernel (mmap) and gives them back
    when freed, so the next step faults them in and zeroes them again: at E=4096 that is the
    400 MB of new expert gradients every step. Returns why it could not, or None.
    """
    import ctypes
    import ctypes.util

    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's <malloc.h>
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
    except (OSError, AttributeError):
        ok = False
    return None if ok else "--keep-freed-memory needs glibc's mallopt (Linux)"


def _hf_experts(experts: Experts, backend: str):
    """transformers' Mixtral experts holding a copy of `experts`' weights; a string says why not."""
    try:
        from transformers import MixtralConfig
        from transformers.models.mixtral.modeling_mixtral import MixtralExperts
    except ImportError:
        return "transformers not installed: pip install -e '.[bench]'"
    E, D, F = experts.w_gate_EDF.shape
    cfg = MixtralConfig(hidden_size=D, intermediate_size=F, num_local_experts=E, experts_implementation=backend)
    hf = MixtralExperts(cfg)
    with torch.no_grad():  # Mixtral stores (out, in): gate and up stacked along out
        hf.gate_up_proj.copy_(torch.cat([experts.w_gate_EDF, experts.w_up_EDF], dim=2).transpose(1, 2))
        hf.down_proj.copy_(experts.w_down_EFD.transpose(1, 2))
    return hf.to(experts.w_gate_EDF.device, experts.w_gate_EDF.dtype)  # (copy_ above casts to the params' fp32)


def draw_inputs(T: int, E: int, K: int, D: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, Router]:
    """The tokens x_TD (a leaf that wants its gradient), the gradient g_TD arriving from above, and the
    router, drawn on the CPU from `seed`: every column of a cell, on any device, gets these."""
    torch.manual_seed(seed)
    x_TD = torch.randn(T, D, requires_grad=True)
    g_TD = torch.randn(T, D)
    return x_TD, g_TD, Router(D, E, K, init_std=0.01)  # near-uniform routing, as at the start of training


def make_columns(T: int, E: int, K: int, D: int, F: int, seed: int = 0, device: str = "cpu",
                 dtype: torch.dtype = torch.float32, names=COLUMNS + GPU_COLUMNS) -> tuple[dict, float]:
    """name -> a function running one forward + backward and returning the output (or a skip reason);
    and the routing's imbalance: the busiest expert's token count over the mean count T*K/E. Everything
    is drawn on the CPU from `seed` (the same numbers on every device), then moved to `device`, `dtype`.
    Hugging Face's and Triton's columns (slow imports) are built only when `names` lists them."""
    def moved(t):  # a leaf on the device, as the CPU's tensor is one on the CPU
        return t.detach().to(device, dtype).requires_grad_(t.requires_grad)

    x_TD, g_TD, router = draw_inputs(T, E, K, D, seed)
    x_TD, g_TD, router = moved(x_TD), moved(g_TD), router.to(device)
    r = router(x_TD.detach())
    ids_TK, w_TK = r.ids_TK, r.weights_TK.detach().requires_grad_(True)
    experts = Experts(E, D, F).to(device, dtype)
    dense = DenseFFN(D, K * F).to(device, dtype)

    C = -(-T * K // E)  # every expert the same count, for the balanced column
    x_ECD, g_ECD = moved(torch.randn(E, C, D, requires_grad=True)), moved(torch.randn(E, C, D))

    def run(f, *modules, grad=g_TD):
        def call():
            y = f()
            y.backward(grad)
            for p in (x_TD, w_TK, x_ECD, *(q for m in modules for q in m.parameters())):
                p.grad = None  # as zero_grad(set_to_none=True): every call allocates its gradients
            return y.detach()
        return call

    cols = {
        "minimoe": run(lambda: auto_forward(x_TD, ids_TK, w_TK, experts), experts),
        "grouped": run(lambda: moe_forward(x_TD, ids_TK, w_TK, experts), experts),
        "dense": run(lambda: dense(x_TD), dense),
        "balanced": run(lambda: swiglu(x_ECD, experts.w_gate_EDF, experts.w_up_EDF, experts.w_down_EFD), experts,
                        grad=g_ECD),  # the padded layout with no padding
        "loop": run(lambda: moe_forward_reference(x_TD, ids_TK, w_TK, experts), experts),
        "router": run(lambda: router(x_TD).weights_TK, router, grad=torch.randn(T, K, device=device)),
        "triton": "a CUDA GPU only (--device cuda)",
    }
    if "triton" in names and (device == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"):  # (interpreter: tests)
        try:  # Triton is optional: implementation() imports it, or says why it cannot
            triton_forward = implementation("triton")
            cols["triton"] = run(lambda: triton_forward(x_TD, ids_TK, w_TK, experts), experts)
        except ConfigError as e:
            cols["triton"] = str(e)
    for name, backend in ((n, b) for n, b in (("hf-eager", "eager"), ("hf-grouped", "grouped_mm")) if n in names):
        hf = _hf_experts(experts, backend)
        cols[name] = hf if isinstance(hf, str) else run(lambda hf=hf: hf(x_TD, ids_TK, w_TK), hf)
    busiest = float(torch.bincount(ids_TK.reshape(-1), minlength=E).max()) / (T * K / E)
    return cols, busiest


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 for a moment: the profiler's C++ side prints a line to it each time it
    starts and stops ("USDT: ... profiler_start"), which would bury the table."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory_mb(call, device: str = "cpu") -> float:
    """Peak of torch's live allocations during one call, relative to its start (CPU: from the profiler's
    memory events; CUDA: from torch.cuda's peak counter)."""
    if device == "cuda":
        torch.cuda.synchronize()
        start = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        call()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - start) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        call()
    live = peak = 0
    for ev in sorted(prof.events(), key=lambda e: e.time_range.start):
        live += ev.self_cpu_memory_usage
        peak = max(peak, live)
    return peak / 2**20


def _timed(call, device: str = "cpu") -> float:
    """Seconds of one call; on a GPU, from idle to idle (a call returns before its kernels finish)."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    t = time.perf_counter()
    call()
    sync()
    return time.perf_counter() - t


def bench_cell(T: int, E: int, K: int, args, estimate: dict) -> dict:
    """Time every column on one (T, E, K); `estimate` carries each loop column's last seconds per E."""
    dev = args.device
    cols, busiest = make_columns(T, E, K, args.width, args.hidden, device=dev, dtype=DTYPES[args.dtype],
                                 names=args.columns)
    out = {name: {} for name in args.columns}
    calls = {}
    for name in args.columns:
        call = cols[name]
        if isinstance(call, str):
            out[name]["skipped"] = call
        elif name in LOOPS and name in estimate and estimate[name] * E > args.skip_over:
            out[name]["skipped"] = f"~{estimate[name] * E:.0f} s a call (> --skip-over {args.skip_over:g})"
        else:
            calls[name] = call
    busy0, mine0 = _cpu_seconds()
    wall0 = time.perf_counter()
    ref = None
    for name in list(calls):  # warmup; the first call also checks that the outputs agree
        try:
            y = calls[name]()
        except (RuntimeError, NotImplementedError) as e:  # an operation this device or dtype lacks
            out[name]["skipped"] = "failed: " + (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            del calls[name]
            continue
        if name not in ("dense", "balanced", "router"):
            ref = y if ref is None else ref
            out[name]["max_abs_diff"] = float((y.float() - ref.float()).abs().max())
        seconds = [_timed(calls[name], dev) for _ in range(max(1, args.warmup))]
        if name in LOOPS:
            estimate[name] = min(seconds) / E
            if min(seconds) > args.skip_over:
                out[name]["skipped"] = f"one call took {min(seconds):.1f} s (> --skip-over {args.skip_over:g})"
                del calls[name]
    times = {name: [] for name in calls}
    order = list(calls)
    rounds, cell, unsettled = 0, {}, []
    while True:
        for r in range(rounds, rounds + args.repeats):  # a round: every column once, in the last one's reverse order
            for name in (order if r % 2 == 0 else order[::-1]):
                times[name].append(_timed(calls[name], dev))
        rounds += args.repeats
        for name in calls:
            out[name].update(ms=1e3 * statistics.median(times[name]), times_ms=[round(1e3 * t, 4) for t in times[name]])
        cell = {"tokens": T, "experts": E, "top_k": K, "columns": out}
        why = undecided(cell)
        unsettled = unsettled or why  # what the first rounds left undecided
        if rounds + args.repeats > args.max_repeats or not why:
            break  # (a goal whose interval crosses its limit here gets --repeats more rounds, up to --max-repeats)
    busy1, mine1 = _cpu_seconds()
    others = ((busy1 - busy0) - (mine1 - mine0)) / (time.perf_counter() - wall0)
    for name in calls:
        out[name].update(tokens_per_s=T / out[name]["ms"] * 1e3,
                         peak_mb=peak_memory_mb(calls[name], dev) if args.memory else None)
    for name in calls:
        out[name]["ratio"] = pair_ratio(out[name], out["dense"])[0] if "dense" in calls else None
    return {**cell, "others_cores": others, "busiest_over_mean": busiest, "rounds": rounds,
            "more_rounds_for": unsettled if rounds > args.repeats else []}


def _pool(a: dict, b: dict) -> dict:
    """Cell b's rounds added to cell a's (--passes): the times of each column pooled, medians taken again."""
    for name, col in b["columns"].items():
        mine = a["columns"].setdefault(name, {})
        if "times_ms" in col and "times_ms" in mine:
            mine["times_ms"] += col["times_ms"]
            mine["ms"] = statistics.median(mine["times_ms"])
            mine["tokens_per_s"] = a["tokens"] / mine["ms"] * 1e3
    for col in a["columns"].values():
        if "times_ms" in col and "times_ms" in a["columns"].get("dense", {}):
            col["ratio"] = pair_ratio(col, a["columns"]["dense"])[0]
    a["others_cores"] = max(a["others_cores"], b["others_cores"])
    a["rounds"] = a.get("rounds", 0) + b.get("rounds", 0)
    return a


def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v]


def add_grid_arguments(p: argparse.ArgumentParser) -> None:
    """The grid of cells and the layer's shape, as `just bench` and `just bench-gap` take them."""
    p.add_argument("--tokens", type=_ints, default=[4096, 1024], help="T: tokens per call, comma-separated")
    p.add_argument("--experts", type=_ints, default=[8, 64, 512, 4096], help="E values, comma-separated")
    p.add_argument("--top-k", type=_ints, default=[1, 2, 7], help="K values, comma-separated")
    p.add_argument("--width", type=int, default=64, help="D: width of the residual stream")
    p.add_argument("--hidden", type=int, default=128, help="F: hidden width of one expert")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_grid_arguments(p)
    p.add_argument("--repeats", type=int, default=25,
                   help="rounds per cell: every column once a round, in alternating order; ratios are the median "
                        "of the rounds' pairs")
    p.add_argument("--max-repeats", type=int, default=100,
                   help="a cell where a goal's interval crosses its limit gets --repeats more rounds, and again, up to "
                        "this many in all (more rounds narrow the interval); = --repeats: never")
    p.add_argument("--passes", type=int, default=1,
                   help="run the whole grid this many times and pool each cell's rounds (on a shared machine a "
                        "neighbour's load can slow every column of a cell for seconds; passes spread the pairs)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls per column after the first (checking) one")
    p.add_argument("--skip-over", type=float, default=0.5,
                   help="skip a loop column (hf-eager, loop) whose one call takes longer (s); it runs --repeats times")
    p.add_argument("--columns", type=lambda s: s.split(","), default=None,
                   help=f"columns to run, comma-separated, from {','.join(COLUMNS + GPU_COLUMNS)} (default: all that "
                        "run on the device)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the layers run: cpu, or cuda (a GPU; adds the triton column)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32", help="the layers' dtype")
    p.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                   help="measure peak memory (one more profiled call per column)")
    p.add_argument("--keep-freed-memory", action="store_true",
                   help="glibc keeps freed memory for reuse instead of returning it to the kernel (all columns)")
    p.add_argument("--quick", action="store_true", help="a small subset: T=1024, E=8,512, K=2, 5 rounds")
    p.add_argument("--out", default="runs/bench", help="folder for bench.json and bench.png; '' = none")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: torch sees no CUDA GPU here (torch.cuda.is_available() is False); run it "
              "on a machine with one, or leave --device out to time the CPU")
        return 2
    known = COLUMNS + (GPU_COLUMNS if args.device == "cuda" else ())
    args.columns = args.columns or list(known)
    unknown = set(args.columns) - set(known)
    if unknown:
        print(f"error: --columns {','.join(sorted(unknown))}: choose from {','.join(known)}"
              + (" (triton: with --device cuda)" if "triton" in unknown and args.device == "cpu" else ""))
        return 2
    small = [f"--{k.replace('_', '-')} {getattr(args, k)}" for k in ("repeats", "max_repeats", "passes", "threads",
                                                                    "width", "hidden")
             if getattr(args, k) < 1]
    if small or not (args.tokens and args.experts and args.top_k) or min(args.tokens + args.experts + args.top_k) < 1:
        print(f"error: {', '.join(small) or '--tokens, --experts and --top-k'}: give whole numbers >= 1")
        return 2
    if "dense" not in args.columns:
        args.columns.insert(0, "dense")  # every ratio is to dense
    if args.quick:
        args.tokens, args.experts, args.top_k, args.repeats, args.max_repeats = [1024], [8, 512], [2], 5, 5
    torch.set_num_threads(args.threads)
    if args.keep_freed_memory and (why := keep_freed_memory()):
        print(f"error: {why}")
        return 2
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{args.threads} threads"
    print(f"forward + backward, {args.dtype}, {where}, D={args.width}, F={args.hidden}, "
          f"median of {args.repeats} rounds in alternating order; ratio = time / dense, the median of the rounds' "
          "pairs; others = cores used by other processes; "
          "busiest = the busiest expert's tokens / the mean"
          + ("; glibc keeps freed memory" if args.keep_freed_memory else ""))
    cells = {}
    t0 = time.perf_counter()
    for n in range(1, args.passes + 1):
        if args.passes > 1:
            print(f"pass {n} of {args.passes}")
        for T in args.tokens:
            for K in args.top_k:
                estimate = {}
                for E in sorted(args.experts):
                    if K > E:
                        continue
                    cell = bench_cell(T, E, K, args, estimate)
                    print(table([cell], args.columns, "time").splitlines()[-1], flush=True)
                    if cell["rounds"] > args.repeats:
                        print(f"{'':11}({cell['rounds']} rounds: after {args.repeats}, the interval of "
                              f"{', '.join(cell['more_rounds_for'])} crossed the goal's limit)")
                    cells[(T, E, K)] = _pool(cells[(T, E, K)], cell) if (T, E, K) in cells else cell
    cells = list(cells.values())
    print("\ntime per call (ratio to dense):")
    print(table(cells, args.columns, "time"))
    print("\nthroughput and peak memory (torch allocations, profiler):")
    print(table(cells, args.columns, "memory"))
    print("\nminimoe / each column, the median of the rounds' pairs (95% interval):")
    print(pairs_table(cells, args.columns))
    print("\nthe course's speed goals (the worst cell of each):")
    print(goals(cells))
    for cell in cells:
        skipped = {n: c["skipped"] for n, c in cell["columns"].items() if "skipped" in c}
        if skipped:
            print(f"T={cell['tokens']} E={cell['experts']} K={cell['top_k']} skipped: "
                  + "; ".join(f"{n}: {why}" for n, why in skipped.items()))
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"torch": torch.__version__, "threads": args.threads, "width": args.width, "hidden": args.hidden,
                "repeats": args.repeats, "max_repeats": args.max_repeats, "warmup": args.warmup, "passes": args.passes,
                "machine": platform.machine(), "processor": platform.processor(), "load_average": os.getloadavg(),
                "keep_freed_memory": args.keep_freed_memory, "device": where if args.device == "cuda" else "cpu",
                "dtype": args.dtype}
        (out / "bench.json").write_text(json.dumps({"meta": meta, "cells": cells}, indent=1))
        plot(out / "bench.png", cells, args.columns)
        print(f"wrote {out / 'bench.json'}, {out / 'bench.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
