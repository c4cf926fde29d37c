"""Expert compression across seeds (phase 39, source note 004's Bets 38/39): `just experiment compression`.

For each seed and expert init (same / independent) it trains the phase 39 lab model
(labs/phase-39-expert-compression/lab.yaml; moe-train flags change it), then on separate copies:
averages the experts, quantises each expert to ternary, prunes 50% of each expert, and runs the
note's recovery fine-tune (200 steps, lr 5e-5) after each. Recovery is more
training, so it is also run on the uncompressed model: that control says how much of a
"recovery" the extra steps alone would give.

Ratios are held-out perplexity over the original model's; `uniq` is the number of distinct
tokens in a 100-token greedy sample; the verdicts are source note 004's pre-registered criteria
(compress.py).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from ..compress import (
    LENIENT,
    METHODS,
    RECOVERY_LR,
    RECOVERY_STEPS,
    Compression,
    compress,
    expert_diversity,
    recover,
    score,
)
from ..config import Config, ConfigError, config_file_in, config_from_args
from ..config import build_parser as config_parser
from ..data import load_dataset
from ..train import train
from . import lab_config

COLUMNS = ("average", "ternary", "prune")


def _run(job) -> dict:
    args, base, init, seed = job
    cfg = base.replace(moe={"expert_init": init}, train={"seed": seed, "threads": 1, "baseline": False, "out": ""})
    data = load_dataset(cfg.train.data, cfg.model.context)
    res = train(cfg, data)
    base = score(res.model, data, res.final.perplexity)
    out = {"init": init, "seed": seed, "ppl": base.perplexity, "uniq": base.unique,
           "avg_norm": min(d["avg_norm"] for d in expert_diversity(res.model))}
    for method in (*METHODS, "none"):
        m = copy.deepcopy(res.model)
        c = compress(m, method, args.sparsity) if method != "none" else None
        if c is not None:
            s = score(m, data, base.perplexity)
            out[method] = {"ratio": s.ratio, "uniq": s.unique, "verdict": s.verdict}
        if args.recover_steps:
            recover(m, data, c or Compression("none"), args.recover_steps, args.recover_lr, seed)
            r = score(m, data, base.perplexity)
            out.setdefault(method, {}).update({"rec": r.ratio, "rec_uniq": r.unique, "rec_verdict": r.verdict})
    return out


def build_parser(defaults: Config | None = None) -> argparse.ArgumentParser:
    """The moe-train flags, defaulting to phase 39's lab.yaml (each run sets its expert init and seed)."""
    p = config_parser("experiment compression", __doc__.split("\n\n")[0], defaults or lab_config(39),
                      skip=("expert_init", "seed"))
    g = p.add_argument_group("compression")
    g.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    g.add_argument("--inits", default="same,independent", help="expert inits to compare (same, independent)")
    g.add_argument("--sparsity", type=float, default=0.5, help="prune: fraction of each expert's weights zeroed")
    g.add_argument("--recover-steps", type=int, default=RECOVERY_STEPS, help="recovery fine-tune steps; 0 = none")
    g.add_argument("--recover-lr", type=float, default=RECOVERY_LR, help="recovery AdamW learning rate")
    g.add_argument("--workers", type=int, default=2, help="runs in parallel, one CPU thread each")
    return p


def _cell(d: dict, rec: bool) -> str:
    if rec:
        return f"{d['rec']:5.2f}x ({d['rec_uniq']:2d})" if "rec" in d else "-"
    return f"{d['ratio']:5.2f}x ({d['uniq']:2d})"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(config_file_in(argv, lab_config(39))).parse_args(argv)
        base = config_from_args(args, lab_config(39))
        inits = args.inits.split(",")
        if any(i not in ("same", "independent") for i in inits) or args.seeds < 1 or not 0 <= args.sparsity < 1:
            raise ConfigError("--inits takes same and/or independent; --seeds >= 1; --sparsity in [0, 1)")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    jobs = [(args, base, init, s) for init in inits for s in range(args.seeds)]
    with ProcessPoolExecutor(args.workers) as ex:
        results = list(ex.map(_run, jobs))
    rec = args.recover_steps > 0
    m, e, t = base.model, base.moe, base.train
    print(f"compression experiment: E={e.experts} K={e.top_k} F={e.expert_hidden}, {t.steps} steps x "
          f"{t.batch * m.context} tokens, aux {e.aux_alpha:g}; "
          "ratio = perplexity / original's (distinct tokens in a 100-token sample)"
          + (f"; +rec = after {args.recover_steps} recovery steps at lr {args.recover_lr:g}" if rec else ""))
    head = f"{'init':<12} {'seed':>4} {'ppl':>5} {'uniq':>4} {'avg_norm':>8}"
    for m in COLUMNS:
        head += f"  {m:>12}" + (f"  {m + ' +rec':>14}" if rec else "")
    if rec:
        head += f"  {'no compression +rec':>19}"
    print(head)
    for r in results:
        line = f"{r['init']:<12} {r['seed']:>4} {r['ppl']:5.2f} {r['uniq']:>4} {r['avg_norm']:8.3f}"
        for m in COLUMNS:
            line += f"  {_cell(r[m], False):>12}" + (f"  {_cell(r[m], True):>14}" if rec else "")
        if rec:
            line += f"  {_cell(r['none'], True):>19}"
        print(line)
    print("\nsummary, min-max over seeds (verdict counts: S = STRICT, L = LENIENT, F = fails LENIENT, "
          "C = CATASTROPHIC):")
    for init in inits:
        rs = [r for r in results if r["init"] == init]
        for m in COLUMNS:
            parts = [f"{init:<12} {m:<8} {_range([r[m]['ratio'] for r in rs])}  "
                     f"{_verdicts([r[m]['verdict'] for r in rs])}"]
            if rec:
                parts.append(f"after recovery {_range([r[m]['rec'] for r in rs])}  "
                             f"{_verdicts([r[m]['rec_verdict'] for r in rs])}")
            print("; ".join(parts))
        if rec:
            print(f"{init:<12} {'control':<8} no compression, {args.recover_steps} more steps: "
                  f"{_range([r['none']['rec'] for r in rs])}")
        under = sum(r["average"]["ratio"] <= LENIENT for r in rs)
        print(f"{init:<12} averaging meets LENIENT ({LENIENT:g}x) in {under} of {len(rs)} seeds"
              + (f", after recovery in {sum(r['average']['rec'] <= LENIENT for r in rs)} of {len(rs)}" if rec else ""))
    print(f"time: {time.perf_counter() - t0:.0f} s")
    return 0


def _range(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}x"


def _verdicts(vs: list[str]) -> str:
    code = {"STRICT": "S", "LENIENT": "L", "FAILS LENIENT": "F", "CATASTROPHIC": "C"}
    counts = {c: sum(code[v] == c for v in vs) for c in "SLFC"}
    return " ".join(f"{c}{n}" for c, n in counts.items() if n)
