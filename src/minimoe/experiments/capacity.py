"""`just experiment capacity`: what a capacity factor costs, and what a zeroed aux loss turns into.

The model is phase 41's (labs/phase-41-capacity-and-token-dropping/lab.yaml: E=4 experts, top-2, width
16, 300 steps of 16 x 64 tokens); moe-train flags change it. Every run is measured on 4,096 held-out
tokens after training.

Default: a grid of capacity factors C (0 = dropless) and aux loss weights aux_alpha, over --seeds
seeds. Per cell, the min-max over the seeds of: the share of (token, expert) assignments dropped in the
last 50 training steps (train_drop%) and on the held-out tokens (drop%), the mean load CV of what the
router asked for, before any dropping (cv%), and the val loss. A grid of one cell prints a row per seed.

`--aux-claim`: the claim of the theory page (docs/theory/routing-math.md, "Capacity factor and token
dropping"): under a capacity limit, a collapse is lost tokens. With K = 1, an expert asked for a share
s of the tokens drops s - C/E of all of them when that is positive, so a router that piles tokens onto
one expert loses them. Phase 36's model (K = 1, E = 4) at C = 1.25 with the aux loss (0.01) and without
it (0), per seed: the dropless run's busiest share (max_load) and the drop it predicts, the same model
trained under the capacity and its measured drop, and the val losses.

    just experiment capacity                       C = 0, 1, 1.25, 2 x aux_alpha = 0, 0.01, 0.1; 3 seeds
    just experiment capacity --factors 1 --alphas 0.01 --seeds 10    the lab's cell, a row per seed
    just experiment capacity --aux-claim           the theory page's claim at C = 1.25; 10 seeds
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor

from ..config import Config, ConfigError, build_parser, config_file_in, config_from_args
from ..data import load_dataset
from ..train import train
from . import lab_config, seed_table

LAST_STEPS = 50  # training drop% is the mean over the last this many steps


def _run(job: tuple[dict, int]) -> dict:
    cfg_dict, seed = job
    cfg = Config.from_dict(cfg_dict).replace(train={"seed": seed, "threads": 1, "baseline": False, "out": ""})
    res = train(cfg, load_dataset(cfg.train.data, cfg.model.context))
    last = res.history[-LAST_STEPS:]
    train_drop = sum(sum(h["drop_pct"]) / len(h["drop_pct"]) for h in last) / max(len(last), 1)
    s = res.summary
    return {"seed": seed, "C": cfg.moe.capacity_factor, "aux_alpha": cfg.moe.aux_alpha,
            "train_drop": train_drop, "drop": s.drop_pct, "cv": s.mean_cv_pct, "max_load": s.max_load,
            "val_loss": res.final.val_loss, "shares": [[c / sum(h.counts) for c in h.counts] for h in res.final.health]}


def _spread(values: list[float], spec: str) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:{spec}}" if f"{lo:{spec}}" == f"{hi:{spec}}" else f"{lo:{spec}}-{hi:{spec}}"


def grid(cfg: Config, factors: list[float], alphas: list[float], seeds: int, workers: int) -> str:
    jobs = [(cfg.replace(moe={"capacity_factor": c, "aux_alpha": a}).to_dict(), s)
            for c in factors for a in alphas for s in range(seeds)]
    with ProcessPoolExecutor(workers) as ex:
        rows = list(ex.map(_run, jobs))
    if len(factors) == len(alphas) == 1:  # one cell: a row per seed
        return (f"C={factors[0]:g} aux_alpha={alphas[0]:g}: E={cfg.moe.experts} K={cfg.moe.top_k} {cfg.train.steps} "
                f"steps, drop policy {cfg.moe.drop_policy}\n"
                + seed_table(rows, {"train_drop": ".1f", "drop": ".1f", "cv": ".1f", "val_loss": ".3f"}, 10))
    head = f"{'C':>5}  {'aux_alpha':>9}  {'train_drop%':>12}  {'drop%':>12}  {'cv%':>10}  {'val_loss':>12}"
    lines = [f"capacity x aux_alpha: E={cfg.moe.experts} K={cfg.moe.top_k} {cfg.train.steps} steps, "
             f"drop policy {cfg.moe.drop_policy}; min-max over seeds 0-{seeds - 1}", head]
    for c in factors:
        for a in alphas:
            cell = [r for r in rows if r["C"] == c and r["aux_alpha"] == a]
            spread = {k: _spread([r[k] for r in cell], spec) for k, spec in
                      (("train_drop", ".1f"), ("drop", ".1f"), ("cv", ".0f"), ("val_loss", ".3f"))}
            lines.append(f"{c:>5g}  {a:>9g}  {spread['train_drop']:>12}  {spread['drop']:>12}  {spread['cv']:>10}  "
                         f"{spread['val_loss']:>12}")
    return "\n".join(lines)


def predicted_drop_pct(shares_LE: list[list[float]], capacity_factor: float) -> float:
    """The theory page's drop at K = 1, mean over layers: sum over experts of max(0, s - C/E), in %."""
    per_layer = [sum(max(0.0, s - capacity_factor / len(sh)) for s in sh) for sh in shares_LE]
    return 100 * sum(per_layer) / len(per_layer)


def aux_claim(cfg: Config, factor: float, seeds: int, workers: int) -> str:
    arms = (0.01, 0.0)
    jobs = [(cfg.replace(moe={"capacity_factor": c, "aux_alpha": a}).to_dict(), s)
            for a in arms for c in (0.0, factor) for s in range(seeds)]
    with ProcessPoolExecutor(workers) as ex:
        runs = list(ex.map(_run, jobs))
    out = [f"the theory page's claim: K={cfg.moe.top_k} E={cfg.moe.experts} C={factor:g}, {cfg.train.steps} steps; "
           "dropless max_load and the drop it predicts, then the run under the capacity"]
    for a in arms:
        rows = []
        for s in range(seeds):
            free = next(r for r in runs if r["aux_alpha"] == a and r["C"] == 0 and r["seed"] == s)
            capped = next(r for r in runs if r["aux_alpha"] == a and r["C"] == factor and r["seed"] == s)
            rows.append({"max_load": free["max_load"], "predicted%": predicted_drop_pct(free["shares"], factor),
                         "drop%": capped["drop"], "val_free": free["val_loss"], "val_capped": capped["val_loss"]})
        out.append(f"\naux_alpha={a:g}")
        out.append(seed_table(rows, {"max_load": ".3f", "predicted%": ".1f", "drop%": ".1f", "val_free": ".3f",
                                     "val_capped": ".3f"}, 10))
    return "\n".join(out)


def _floats(text: str, flag: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: give numbers separated by commas, e.g. 0,1,1.25") from None
    if not values or any(v < 0 or v != v for v in values):
        raise ConfigError(f"{flag} {text!r}: give numbers >= 0, separated by commas")
    return values


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        p = build_parser("experiment capacity", __doc__.splitlines()[0], config_file_in(argv, lab_config(41)))
        g = p.add_argument_group("capacity")
        g.add_argument("--factors", default="0,1,1.25,2", help="capacity factors of the grid (0 = dropless)")
        g.add_argument("--alphas", default="0,0.01,0.1", help="aux_alpha values of the grid")
        g.add_argument("--aux-claim", action="store_true", help="the theory page's claim instead of the grid")
        g.add_argument("--claim-factor", type=float, default=1.25, help="the capacity factor of --aux-claim")
        g.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3; --aux-claim 10)")
        g.add_argument("--workers", type=int, default=2, help="runs in parallel (one thread each)")
        args = p.parse_args(argv)
        cfg = config_from_args(args, lab_config(41))
        if (args.seeds is not None and args.seeds < 1) or args.workers < 1:
            raise ConfigError("--seeds and --workers must be at least 1")
        if args.aux_claim:
            if not args.claim_factor > 0:
                raise ConfigError(f"--claim-factor {args.claim_factor}: must be > 0")
            base = lab_config(36).replace(train={"steps": cfg.train.steps})
            print(aux_claim(base, args.claim_factor, args.seeds or 10, args.workers))
        else:
            factors, alphas = _floats(args.factors, "--factors"), _floats(args.alphas, "--alphas")
            print(grid(cfg, factors, alphas, args.seeds or 3, args.workers))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
