"""Sparse vs soft gating (phase 38, source note 001): `just experiment gating`.

Trains the same toy (labs/phase-38-sparse-vs-soft-gating/gating.yaml; moe-train flags change it)
under four gating modes, with several aux-loss weights and seeds, and prints
what each does to the load balance and the val loss:

  sparse top-1   each token to its best expert, weighted by its router probability (Switch)
  sparse top-2   each token to its two best experts, weights renormalised (Mixtral)
  ste top-1      hard top-1 with weight exactly 1 and a straight-through gradient
  soft           every expert on every token, blended by the softmax (no routing decision)

Balance is measured on held-out tokens as in `just moe-train` (telemetry.py): mean load CV, the
worst layer's max_load (the busiest expert's share), E_eff and dead experts; for soft gating the
"load" is each expert's gate mass. Source note 001 reports sparse top-1 collapsing to a 98/2 split
of two experts even with aux 0.1 while soft gating stayed balanced: the last lines set that claim
against what this toy does.

`--compile` checks the note's other claim, that sparse dispatch and torch.compile do not mix: for
each mode it compiles one training step (in a child process with a time limit) and reports
whether it compiles, with fullgraph=True and without, how many graphs and graph breaks Dynamo
made, and the step time compiled vs eager (those lines start with "time:": no two runs agree).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from ..config import Config, ConfigError, config_file_in, config_from_args
from ..config import build_parser as config_parser
from ..data import Batches, load_dataset
from ..loss import combine_losses, main_loss_fn
from ..model import MiniLM
from ..params import count_params
from ..train import train
from . import lab_config

MODES = {  # name: (gating, top_k)
    "sparse-top1": ("sparse", 1),
    "sparse-top2": ("sparse", 2),
    "ste-top1": ("ste", 1),
    "soft": ("soft", 1),
}


def _config(base: Config, mode: str, aux: float, seed: int) -> Config:
    """The experiment's model under one gating mode, aux weight and seed."""
    gating, top_k = MODES[mode]
    return base.replace(moe={"top_k": min(top_k, base.moe.experts), "gating": gating, "aux_alpha": aux},
                        train={"seed": seed, "threads": 1, "baseline": False, "out": ""})


def _run(job) -> dict:
    """One training run (in a worker process, one thread): its balance summary and val loss."""
    base, mode, aux, seed = job
    res = train(_config(base, mode, aux, seed))
    health = res.final.health
    worst = max(health, key=lambda h: h.max_load)
    total = sum(worst.counts)
    pc = count_params(res.cfg)
    s = res.summary
    return {"mode": mode, "aux": aux, "seed": seed, "val_loss": res.final.val_loss, "cv": s.mean_cv_pct,
            "max_load": s.max_load, "e_eff": s.e_eff, "dead": s.dead, "p_total": pc.total, "p_active": pc.active,
            "shares": [c / total for c in worst.counts], "worst_layer": worst.layer}


def _span(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return f"{statistics.mean(values):{fmt}} ({lo:{fmt}}-{hi:{fmt}})" if len(values) > 1 else f"{lo:{fmt}}"


def balance_table(args, base: Config) -> list[dict]:
    auxes = [float(a) for a in args.aux.split(",")]
    modes = [m for m in args.modes.split(",")]
    seeds = list(range(args.seeds))
    jobs = [(base, m, a, s) for m in modes for a in auxes for s in seeds]
    with ProcessPoolExecutor(args.workers) as ex:
        results = list(ex.map(_run, jobs))
    m_, e_, t_ = base.model, base.moe, base.train
    print(f"gating experiment: E={e_.experts} F={e_.expert_hidden} layers={m_.layers} "
          f"moe_start_layer={m_.moe_start_layer}, {t_.steps} steps x {t_.batch * m_.context} tokens, "
          f"seeds 0-{args.seeds - 1}; mean (min-max) over seeds, measured on {t_.eval_tokens} held-out tokens")
    print(f"{'mode':<12} {'aux':>5} {'P_total':>8} {'P_active':>8}  {'val_loss':<20} {'mean_cv%':<20} "
          f"{'max_load':<20} {'E_eff':<17} dead")
    for m in modes:
        for a in auxes:
            rs = [r for r in results if r["mode"] == m and r["aux"] == a]
            print(f"{m:<12} {a:>5g} {rs[0]['p_total']:>8,} {rs[0]['p_active']:>8,}  "
                  f"{_span([r['val_loss'] for r in rs], '.3f'):<20} {_span([r['cv'] for r in rs], '.0f'):<20} "
                  f"{_span([r['max_load'] for r in rs], '.2f'):<20} {_span([r['e_eff'] for r in rs], '.1f'):<17} "
                  f"{_span([r['dead'] for r in rs], '.0f')}")
    print("\nshare of held-out tokens per expert, busiest layer (soft: share of the gate mass), seed 0:")
    for m in modes:
        for a in auxes:
            r = next(r for r in results if r["mode"] == m and r["aux"] == a and r["seed"] == 0)
            print(f"{m:<12} aux {a:<5g} L{r['worst_layer']}  [" + " ".join(f"{x:.2f}" for x in r["shares"]) + "]")
    top1 = [r for r in results if r["mode"] == "sparse-top1" and r["aux"] == 0.1]
    if top1:  # source note 001's setting was E=2, top-1, aux 0.1
        worst = [r["max_load"] for r in top1]
        print(f"\nsource note 001's claim: sparse top-1 with 2 experts collapsed to a 98/2 split even with aux 0.1. "
              f"Here, E={e_.experts}, sparse top-1, aux 0.1: the busiest expert of the worst layer takes "
              f"{min(worst):.2f}-{max(worst):.2f} of the tokens over {len(top1)} seeds "
              f"({sum(w >= 0.9 for w in worst)} of them >= 0.90).")
    return results


# ---------------------------------------------------------------- torch.compile

def _compile_one(args, base: Config, mode: str, fullgraph: bool) -> dict:
    """Time eager and compiled training steps for one mode (runs in a child process)."""
    from torch._dynamo.utils import counters  # torch's compiler: loaded only in the child that compiles

    torch.set_num_threads(1)
    data = load_dataset("", base.model.context)
    cfg = _config(base, mode, 0.01, 0).replace(model={"vocab_size": data.vocab_size})
    torch.manual_seed(0)
    model = MiniLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    batches = Batches(data.train_ids, cfg.model.context, cfg.train.batch, 0)

    def step(m):
        x_BS, y_BS = batches.next()
        logits, routings = m(x_BS)
        loss = combine_losses(main_loss_fn(logits, y_BS), routings, cfg.moe.aux_alpha).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def timed(m, n):
        t = time.perf_counter()
        for _ in range(n):
            step(m)
        return (time.perf_counter() - t) / n

    step(model)
    eager = timed(model, args.compile_steps)
    out = {"mode": mode, "fullgraph": fullgraph, "eager_ms": 1000 * eager}
    compiled = torch.compile(model, fullgraph=fullgraph)
    t = time.perf_counter()
    try:
        step(compiled)
        out["first_s"] = time.perf_counter() - t
        out["compiled_ms"] = 1000 * timed(compiled, args.compile_steps)
        out["ok"] = True
    except Exception as e:  # a compile failure is the measured result
        out["ok"], out["error"] = False, _reason(e)
    out["graphs"] = counters["stats"].get("unique_graphs", 0)
    out["graph_breaks"] = sum(counters["graph_break"].values())
    return out


# Telling phrases of compile errors, each with a plain gloss (the rest of the message varies run to run)
KEY_PHRASES = {"Could not guard on data-dependent expression": "a shape depends on values inside a tensor",
               "Expected inputs of BF16 type": "torch._grouped_mm at compile time; eager runs it in float32"}


def _reason(e: BaseException) -> str:
    """The most telling part of a compile error (Dynamo's first line is often generic advice)."""
    chain, err = [], e
    while err is not None and len(chain) < 6:  # the exception and what caused it
        chain.append(err)
        err = err.__cause__ or err.__context__
    lines = [ln.strip() for err in chain for ln in str(err).splitlines() if ln.strip()]
    for key, gloss in KEY_PHRASES.items():
        for ln in lines:
            if key in ln:
                return f"{type(e).__name__}: {key} ({gloss})"
    return f"{type(e).__name__}: {(lines[0] if lines else '')[:100]}"


def compile_table(args) -> None:
    print(f"\ntorch.compile of one training step ({args.compile_steps} steps timed after the first; "
          f"torch {torch.__version__}, CPU, 1 thread; each try limited to {args.compile_timeout} s):")
    print(f"{'mode':<12} {'fullgraph':<9}  {'compiles':<8} {'graphs':>6} {'breaks':>6}  note")
    timings = []
    for mode in args.modes.split(","):
        for fullgraph in (True, False):
            cmd = [sys.executable, "-m", "minimoe.experiments", "gating", "--compile-one", mode,
                   *(["--fullgraph"] if fullgraph else []), *args.passthrough]
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.compile_timeout)
                last = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
                r = json.loads(last[-1]) if last else {"ok": False, "error": f"crashed: {p.stderr[-110:]}"}
            except subprocess.TimeoutExpired:
                r = {"ok": False, "error": f"still compiling after {args.compile_timeout} s"}
            note = "" if r.get("ok") else r.get("error", "")
            ok = r.get("ok")  # graph counts of a failed try depend on where it stopped: not shown
            print(f"{mode:<12} {str(fullgraph):<9}  {'yes' if ok else 'no':<8} {r['graphs'] if ok else '-':>6} "
                  f"{r['graph_breaks'] if ok else '-':>6}  {note}")
            if r.get("ok"):
                timings.append(f"time: {mode} fullgraph={fullgraph}: first step {r['first_s']:.1f} s; eager "
                               f"{r['eager_ms']:.1f} ms/step, compiled {r['compiled_ms']:.1f} ms/step "
                               f"({r['compiled_ms'] / r['eager_ms']:.2f}x)")
            elif "eager_ms" in r:
                timings.append(f"time: {mode}: eager {r['eager_ms']:.1f} ms/step")
    print("\n".join(timings))


def build_parser(defaults: Config | None = None) -> argparse.ArgumentParser:
    """The moe-train flags, defaulting to gating.yaml (each run sets its gating, K, aux weight and seed)."""
    p = config_parser("experiment gating", __doc__.split("\n\n")[0], defaults or lab_config(38, "gating"),
                      skip=("gating", "top_k", "aux_alpha", "seed"))
    g = p.add_argument_group("gating")
    g.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, from {', '.join(MODES)}")
    g.add_argument("--aux", default="0,0.01,0.1", help="comma-separated aux-loss weights (aux_alpha)")
    g.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per configuration")
    g.add_argument("--workers", type=int, default=2, help="runs in parallel, one CPU thread each")
    g.add_argument("--compile", action="store_true", help="also check torch.compile on each mode (minutes)")
    g.add_argument("--compile-only", action="store_true", help="only the torch.compile check")
    g.add_argument("--compile-steps", type=int, default=10, help="steps timed for eager and compiled")
    g.add_argument("--compile-timeout", type=int, default=240, help="seconds allowed to each compile try")
    g.add_argument("--compile-one", default="", help=argparse.SUPPRESS)
    g.add_argument("--fullgraph", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(config_file_in(argv, lab_config(38, "gating"))).parse_args(argv)
        base = config_from_args(args, lab_config(38, "gating"))
        unknown = [m for m in args.modes.split(",") if m not in MODES]
        if unknown:
            raise ConfigError(f"--modes: unknown {', '.join(unknown)}; choose from {', '.join(MODES)}")
        if base.model.moe_start_layer >= base.model.layers:
            raise ConfigError(f"--moe-start-layer {base.model.moe_start_layer}: must be in 0..{base.model.layers - 1} "
                              "(at least one MoE layer)")
        for mode in args.modes.split(","):
            _config(base, mode, 0.0, 0)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.compile_one:
        print(json.dumps(_compile_one(args, base, args.compile_one, args.fullgraph)))
        return 0
    args.passthrough = [a for a in argv if a not in ("--compile", "--compile-only")]
    t0 = time.perf_counter()
    if not args.compile_only:
        balance_table(args, base)
    if args.compile or args.compile_only:
        compile_table(args)
    print(f"time: {time.perf_counter() - t0:.0f} s")
    return 0
