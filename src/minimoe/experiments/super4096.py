"""Super-4096 in miniature (source note 000, "Super-4096"): hold the token budget fixed, raise the
expert count, and watch the loss improve while the routed system shrinks to a fraction of the
experts it advertises.

Every model has phase 37's shape (D=32, 2 blocks, top-7 routing over E experts of hidden width 8,
one shared expert; labs/phase-37-extreme-sparsity/super4096.yaml, which moe-train flags change) and
trains on the same tokens (steps x batch x 64). Raising E therefore divides the same routed tokens
among more experts (tokens per expert = T * K / E). For each E the table shows the dashboard of
source note 000, measured on 4,096 held-out tokens before training (init) and after it:

  val_loss        the loss the run would be judged on
  cv%             mean over layers of the CV of the expert loads (std / mean)
  cv_rand%        the CV that uniform random assignment of the same tokens would give: imbalance up
                  to this level is sampling, not routing
  max_load        the busiest expert's share of the assignments in the worst layer (ceiling 1/K)
  min_ent, E_eff  the worst layer's load entropy and exp(min_ent): how many experts it really uses
  dead            experts (summed over layers) that got no held-out token
  collapse@       per layer, the first training step with max_load >= 0.9 * (1/K), source note
                  000's threshold (never: not reached)

`--falsify` runs source note 000's first falsifier at one E instead: no balancing, the aux loss alone at
1e-4 and at 0.01, and the aux-free bias alone. The second falsifier, lowering E at a fixed token
budget, is the default table itself.

    just experiment super4096                     E = 64, 256, 1024, 4096; 150 steps
    just experiment super4096 --preset small      E = 16, 64, 256; 100 steps (under a minute)
    just experiment super4096 --falsify           the balancing arms at E = 1024
    just experiment super4096 --preset full       300 steps, falsifiers at E = 4096 (slow on a CPU)
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from ..config import Config, ConfigError, config_file_in, config_from_args
from ..config import build_parser as config_parser
from ..data import load_dataset
from ..train import train
from . import lab_config

PRESETS = {  # flag defaults per preset; explicit flags win
    "small": {"experts": "16,64,256", "steps": 100, "falsify_at": 256},
    "default": {"experts": "64,256,1024,4096", "steps": 150, "falsify_at": 1024},
    "full": {"experts": "64,256,1024,4096", "steps": 300, "falsify_at": 4096},
}


@dataclass
class Arm:
    name: str
    aux_alpha: float
    bias_update_rate: float


def falsifier_arms(bias_rate: float) -> list[Arm]:
    """Source note 000's first falsifier: is it the missing balancing pressure, and which kind helps?"""
    return [Arm("no balancing", 0.0, 0.0), Arm("aux 1e-4", 1e-4, 0.0), Arm("aux 0.01", 0.01, 0.0),
            Arm(f"aux-free bias {bias_rate:g}", 0.0, bias_rate)]


def _run(job: tuple[str, Config]) -> dict:
    """Train one model; return its dashboard at init and after training (plain numbers, picklable)."""
    name, cfg = job
    data = load_dataset(cfg.train.data, cfg.model.context)
    at_init = train(cfg.replace(train={"steps": 0}), data)  # the same seed builds the same initial model
    init = at_init.summary
    res = train(cfg, data)
    s = res.summary
    h = res.history
    picks = sorted({1, *(max(1, round(len(h) * f)) for f in (0.25, 0.5, 0.75, 1.0))}) if h else []
    return {
        "name": name, "E": cfg.moe.experts, "val_init": at_init.final.val_loss,
        "val": res.final.val_loss, "cv": s.mean_cv_pct, "cv_rand": res.final.health[0].cv_random_pct,
        "max_load": s.max_load, "min_ent": s.min_entropy, "e_eff": s.e_eff, "dead": s.dead,
        "e_eff_init": init.e_eff, "dead_init": init.dead, "cv_init": init.mean_cv_pct,
        "first_collapse": res.first_collapse, "seconds": res.seconds,
        "trajectory": [(h[i - 1]["step"], h[i - 1]["main"], sum(h[i - 1]["cv"]) / len(h[i - 1]["cv"]),
                        h[i - 1]["cv_random"], max(h[i - 1]["max_load"])) for i in picks],
    }


def _collapse(steps: list[int | None]) -> str:
    return "/".join("never" if s is None else str(s) for s in steps)


def print_table(rows: list[dict], cfg: Config, label: str) -> None:
    tokens = cfg.train.steps * cfg.train.batch * cfg.model.context
    K, L = cfg.moe.top_k, cfg.model.layers
    print(f"{label:>20} {'tok/expert':>10} {'val_loss':>13} {'cv%':>11} {'cv_rand%':>8} {'max_load':>8} "
          f"{'min_ent':>7} {'E_eff':>13} {'dead':>13} {'collapse@':>11}")
    for r in rows:
        E = r["E"]
        print(f"{r['name']:>20} {tokens * K / E:>10,.0f} {r['val_init']:>5.3f}->{r['val']:<6.3f} "
              f"{r['cv_init']:>4.0f}->{r['cv']:<5.0f} {r['cv_rand']:>8.1f} {r['max_load']:>8.3f} "
              f"{r['min_ent']:>7.2f} {r['e_eff_init']:>5.0f}->{r['e_eff']:<6.0f} "
              f"{r['dead_init']:>5}->{r['dead']:<6} {_collapse(r['first_collapse']):>11}")
    print(f"(init->end on 4,096 held-out tokens; E_eff: the worst layer's, out of E; dead: summed over the {L} "
          f"layers, out of {L}*E; collapse@: first step with max_load >= {cfg.moe.collapse_threshold:g}/K = "
          f"{cfg.moe.collapse_threshold / K:.3f})")


def print_trajectory(r: dict) -> None:
    print(f"\ntraining batches of {r['name']}: the loss falls while the load stays uneven")
    print(f"{'step':>6} {'main':>6} {'mean cv%':>8} {'cv_rand%':>8} {'max_load':>8}")
    for step, main, cv, cv_rand, max_load in r["trajectory"]:
        print(f"{step:>6} {main:>6.3f} {cv:>8.0f} {cv_rand:>8.0f} {max_load:>8.3f}")


def build_parser(defaults: Config | None = None) -> argparse.ArgumentParser:
    """The moe-train flags, defaulting to super4096.yaml (--experts is the ladder here; --steps the preset's)."""
    p = config_parser("experiment super4096", __doc__.split("\n\n")[0], defaults or lab_config(37, "super4096"),
                      skip=("experts",))
    for action in p._actions:
        if action.dest == "train.steps":  # the fixed token budget: its default comes from the preset
            action.default, action.help = None, "optimiser steps of every model: the fixed token budget (preset: 150)"
        if action.dest == "moe.bias_update_rate":
            action.help += " (the E ladder's; --bias-rate is the --falsify arm's)"
    g = p.add_argument_group("super4096")
    g.add_argument("--preset", choices=sorted(PRESETS), default="default", help="a set of defaults for the flags below")
    g.add_argument("--experts", help="E of each model, comma-separated (preset default: 64,256,1024,4096)")
    g.add_argument("--falsify", action="store_true", help="run the balancing arms at one E instead of the E ladder")
    g.add_argument("--falsify-at", type=int, help="E of the --falsify runs (preset default: 1024)")
    g.add_argument("--bias-rate", type=float, default=0.01, help="aux-free bias rate of the --falsify arm")
    g.add_argument("--workers", type=int, default=2, help="models trained at the same time (one thread each)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(config_file_in(argv, lab_config(37, "super4096"))).parse_args(argv)
        preset = PRESETS[args.preset]
        vars(args)["train.steps"] = steps = vars(args)["train.steps"] or preset["steps"]
        ladder = preset["experts"] if args.experts is None else args.experts
        experts = [int(x) for x in str(ladder).split(",") if x.strip()]
        falsify_at = args.falsify_at or preset["falsify_at"]
        if not experts or args.workers < 1 or steps < 1:
            raise ConfigError("--experts needs at least one E; --steps and --workers must be >= 1")
        cfg = config_from_args(args, lab_config(37, "super4096"))
        base = cfg.replace(moe={"experts": max(64, cfg.moe.top_k)},  # E: set by each run below
                           train={"threads": 1, "baseline": False, "out": "", "log_every": max(1, steps)})
        if args.falsify:
            arms = falsifier_arms(args.bias_rate)
            jobs = [(a.name, base.replace(moe={"experts": falsify_at, "aux_alpha": a.aux_alpha,
                                               "bias_update_rate": a.bias_update_rate})) for a in arms]
        else:
            jobs = [(f"E={E}", base.replace(moe={"experts": E})) for E in experts]
    except (ValueError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    m, e, t = base.model, base.moe, base.train
    tokens = t.steps * t.batch * m.context
    what = (f"balancing arms at E={falsify_at}" if args.falsify else
            f"aux_alpha={e.aux_alpha:g}, bias_update_rate={e.bias_update_rate:g}")
    print(f"Super-4096 in miniature: D={m.width}, {m.layers} MoE blocks, K={e.top_k}, S={e.shared}, "
          f"F={e.expert_hidden}; {t.steps} steps x {t.batch * m.context} tokens = {tokens:,} "
          f"tokens for every model; {what}; seed {t.seed}")
    t0 = time.perf_counter()
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][1].moe.experts)  # largest first: workers end together
    with ProcessPoolExecutor(args.workers) as ex:
        done = dict(zip(order, ex.map(_run, [jobs[i] for i in order])))
    rows = [done[i] for i in range(len(jobs))]
    print()
    print_table(rows, base.replace(moe={"experts": max(r["E"] for r in rows)}),
                f"E={falsify_at}" if args.falsify else "E")
    print_trajectory(max(rows, key=lambda r: r["E"]) if not args.falsify else rows[0])
    print(f"time: {len(jobs)} models in {time.perf_counter() - t0:.0f} s "
          f"(slowest {max(r['seconds'] for r in rows):.0f} s of training)")
    return 0
