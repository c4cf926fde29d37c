"""Fair comparisons (source note 002, "What are we holding fixed?"): does the dense-vs-MoE ranking depend
on the data contract?

An MoE has two sizes, P_total (stored) and P_active (touched by one token; params.py). A token
budget tied to model size must pick one:

    totalDN   T = gamma * P_total     every stored parameter gets gamma tokens
    activeDN  T = gamma * P_active    every active parameter gets gamma tokens

As in the note, gamma is derived from the dense baseline (gamma = its tokens / its parameters)
and kept the same under both contracts; for a dense model the two budgets coincide, so it is
trained once. Every MoE has the dense model's active FFN width, (K + S) * F = dense hidden, so
per-token FFN work is matched too. Each model trains for the steps its budget gives
(params.token_budget), and the models are ranked by val loss under each contract. What every model
shares is labs/phase-40-fair-comparisons/fair.yaml (moe-train flags change it).

    just experiment fair                      dense vs MoE-16 vs MoE-64, gamma from 300 dense steps
    just experiment fair --preset small       a smaller, faster version (under a minute)
    just experiment fair --wide --seeds 0     also a dense model as large as the largest MoE stores
    just experiment fair --audit 10           no training: check the accounting on 10 drawn model shapes

The audit is what phase 40's detectors check, seed by seed: P_total and P_active from the formula
(params.py) against the parameters counted in the built modules, and each fair-comparison budget
against gamma times the counted size that its contract names.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from ..config import Config, ConfigError, config_file_in, config_from_args
from ..config import build_parser as config_parser
from ..data import load_dataset
from ..model import MiniLM
from ..params import CONTRACTS, ParamCounts, count_params, counted_active, counted_params, steps_for, token_budget
from ..train import train
from . import lab_config

PRESETS = {  # flag defaults per preset; explicit flags win
    "default": {"experts": "16,64", "dense_steps": 300, "seeds": "0,1"},
    "small": {"experts": "4,16", "dense_steps": 60, "seeds": "0"},
}


@dataclass
class Plan:
    """One model trained under one contract: what is held fixed, and the budget it gives."""

    name: str
    cfg: Config
    counts: ParamCounts
    contract: str
    ratio: float  # gamma: tokens per stored (totalDN) or per active (activeDN) parameter
    tokens: int
    steps: int


def base_config(vocab_size: int = 0) -> Config:
    """What every model of the comparison shares: fair.yaml (phase 40's detectors use it too)."""
    return lab_config(40, "fair").replace(model={"vocab_size": vocab_size},
                                          train={"threads": 1, "baseline": False, "out": ""})


def model_configs(base: Config, experts: list[int], wide: bool = False) -> dict[str, Config]:
    """The dense model and one MoE per E, all with the same active FFN width (K + S) * F of base's MoE
    settings; with `wide`, also a dense model as large as the largest MoE stores (its FFN widened until
    P_total matches)."""
    top_k, shared, expert_hidden = base.moe.top_k, base.moe.shared, base.moe.expert_hidden
    width = (top_k + shared) * expert_hidden
    L = base.model.layers
    dense = base.replace(model={"moe_start_layer": L, "dense_hidden": width},
                         moe={"experts": 1, "top_k": 1, "shared": 0, "expert_hidden": expert_hidden})
    out = {"dense": dense}
    for E in experts:
        out[f"moe-{E}"] = base.replace(model={"moe_start_layer": 0, "dense_hidden": 0}, moe={"experts": E})
    if wide and experts:
        target = count_params(out[f"moe-{max(experts)}"]).total
        per_unit = L * 3 * base.model.width  # parameters per unit of dense FFN hidden width
        outside = count_params(dense).total - per_unit * width
        out["dense-wide"] = dense.replace(model={"dense_hidden": max(1, round((target - outside) / per_unit))})
    return out


def dense_ratio(dense: Config, dense_steps: int) -> float:
    """gamma: the dense baseline's tokens per parameter (P_total = P_active for a dense model)."""
    tokens = dense_steps * dense.train.batch * dense.model.context
    return tokens / count_params(dense).total


def plan(models: dict[str, Config], contract: str, ratio: float) -> list[Plan]:
    """Each model's token budget and steps under one contract."""
    rows = []
    for name, cfg in models.items():
        counts = count_params(cfg)
        tokens = token_budget(counts, contract, ratio)
        rows.append(Plan(name, cfg, counts, contract, ratio, tokens, steps_for(tokens, cfg)))
    return rows


def audit_shape(base: Config, seed: int) -> Config:
    """A small model shape drawn from the random seed: 1-3 blocks, at least one MoE block, S >= 1 shared expert."""
    rng = random.Random(seed)
    layers = rng.randint(1, 3)
    E = rng.choice([4, 8, 16, 64])
    return base.replace(
        model={"width": rng.choice([12, 24, 48]), "heads": 3, "layers": layers,
               "moe_start_layer": rng.randint(0, layers - 1)},
        moe={"experts": E, "top_k": rng.randint(1, min(4, E)), "shared": rng.randint(1, 2),
             "expert_hidden": rng.choice([4, 8, 16])},
    )


def audit_comparison(base: Config, seed: int, experts: tuple[int, ...] = (16, 64)) -> tuple[dict[str, Config], float]:
    """The fair comparison's models and gamma, varied by the seed: one more E (4 to 128), K = 1 or 2, other
    dense steps (100 to 1,050). Any seed, however large, gives a model of this size."""
    varied = base.replace(moe={"experts": max(base.moe.experts, 2), "top_k": 1 + seed % 2, "shared": 1,
                               "expert_hidden": 16})
    models = model_configs(varied, [*experts, 4 + 4 * (seed % 32)])
    return models, dense_ratio(models["dense"], dense_steps=100 + 50 * (seed % 20))


def audit(base: Config, seeds: int) -> None:
    """Print, per seed, formula vs counted parameters and each budget vs its contract (no training)."""
    print(f"{'seed':>4}  {'shape':<30} {'P_total':>8} {'counted':>8} {'P_active':>8} {'counted':>8} "
          f"{'active_gap':>10} {'budget_gap':>10}")
    worst = {"active_gap": 0, "budget_gap": 0}
    for seed in range(seeds):
        cfg = audit_shape(base, seed)
        model = MiniLM(cfg)
        pc = count_params(cfg)
        n_total, n_active = counted_params(model), counted_active(model)
        models, gamma = audit_comparison(base, seed)
        gap = 0  # the largest budget error over every model and contract, in tokens
        for contract in CONTRACTS:
            for r in plan(models, contract, gamma):
                m = MiniLM(r.cfg)
                want = round(gamma * (counted_params(m) if contract == "totalDN" else counted_active(m)))
                gap = max(gap, abs(r.tokens - want), key=abs)
        m, e = cfg.model, cfg.moe
        shape = f"D={m.width} L={m.layers} moe@{m.moe_start_layer} E={e.experts} K={e.top_k} S={e.shared}"
        row = {"active_gap": pc.active - n_active, "budget_gap": gap}
        worst = {k: max(worst[k], abs(v)) for k, v in row.items()}
        print(f"{seed:>4}  {shape:<30} {pc.total:>8,} {n_total:>8,} {pc.active:>8,} {n_active:>8,} "
              f"{row['active_gap']:>10,} {row['budget_gap']:>10,}")
    print(f"largest |gap| over the seeds: P_active {worst['active_gap']:,} parameters, "
          f"budget {worst['budget_gap']:,} tokens (0 and 0 when the accounting is right)")


def _train(job: tuple[Config, int]) -> tuple[float, float]:
    cfg, steps = job
    res = train(cfg.replace(train={"steps": steps}), load_dataset(cfg.train.data, cfg.model.context))
    return res.final.val_loss, res.seconds


def ranking(losses: dict[str, float]) -> list[str]:
    return sorted(losses, key=losses.__getitem__)


def build_parser(defaults: Config | None = None) -> argparse.ArgumentParser:
    """The moe-train flags, defaulting to fair.yaml (--experts and --seeds are lists here; steps come from
    each model's budget)."""
    p = config_parser("experiment fair", __doc__.split("\n\n")[0], defaults or lab_config(40, "fair"),
                      skip=("experts", "seed", "steps"))
    g = p.add_argument_group("fair")
    g.add_argument("--audit", type=int, metavar="N",
                   help="no training: check the accounting on the model shapes of seeds 0..N-1")
    g.add_argument("--preset", choices=sorted(PRESETS), default="default", help="a set of defaults for the flags below")
    g.add_argument("--experts", help="E of each MoE model, comma-separated (preset: default 16,64; small 4,16)")
    g.add_argument("--dense-steps", type=int, help="steps of the dense baseline; sets gamma (preset: 300; small 60)")
    g.add_argument("--seeds", help="training seeds; val loss is averaged over them (preset: 0,1; small 0)")
    g.add_argument("--wide", action="store_true",
                   help="also train dense-wide: a dense model that stores as many parameters as the largest MoE (slow)")
    g.add_argument("--workers", type=int, default=2, help="models trained at the same time (one thread each)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(config_file_in(argv, lab_config(40, "fair"))).parse_args(argv)
        for k, v in PRESETS[args.preset].items():
            if getattr(args, k) is None:
                setattr(args, k, v)
        experts = [int(x) for x in str(args.experts).split(",") if x.strip()]
        seeds = [int(x) for x in str(args.seeds).split(",") if x.strip()]
        if args.dense_steps < 1 or not experts or not seeds or args.workers < 1:
            raise ConfigError("--dense-steps and --workers must be >= 1, --experts and --seeds non-empty")
        V = load_dataset("", Config().model.context).vocab_size
        base = config_from_args(args, lab_config(40, "fair")).replace(
            model={"vocab_size": V}, train={"threads": 1, "baseline": False, "out": ""})
        models = model_configs(base, experts, wide=args.wide)
    except (ValueError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.audit is not None:
        audit(base, args.audit)
        return 0
    gamma = dense_ratio(models["dense"], args.dense_steps)
    plans = {c: plan(models, c, gamma) for c in CONTRACTS}
    tok = base.train.batch * base.model.context
    print(f"gamma = {gamma:.2f} tokens per parameter: the dense model's {args.dense_steps} steps x {tok} tokens "
          f"/ its {count_params(models['dense']).total:,} parameters; the same gamma under both contracts")
    m, e = base.model, base.moe
    print(f"every model: D={m.width}, {m.layers} blocks; dense and each MoE: active FFN width (K + S) * F = "
          f"{base.matched_dense_hidden}; MoE: K={e.top_k} S={e.shared} "
          f"F={e.expert_hidden}; val loss averaged over seeds {','.join(map(str, seeds))}")
    if "dense-wide" in models:
        print(f"dense-wide: a dense model with FFN width {models['dense-wide'].model.dense_hidden}, "
              f"as many stored parameters as moe-{max(experts)}")

    jobs = {}  # (name, steps) -> config; a dense model's two budgets coincide, so it trains once
    for c in CONTRACTS:
        for r in plans[c]:
            for s in seeds:
                jobs[(r.name, r.steps, s)] = r.cfg.replace(train={"seed": s})
    t0 = time.perf_counter()
    keys = sorted(jobs, key=lambda k: -k[1])  # longest first, so the two workers finish together
    with ProcessPoolExecutor(args.workers) as ex:
        results = dict(zip(keys, ex.map(_train, [(jobs[k], k[1]) for k in keys])))
    wall = time.perf_counter() - t0

    losses = {c: {r.name: sum(results[(r.name, r.steps, s)][0] for s in seeds) / len(seeds) for r in plans[c]}
              for c in CONTRACTS}
    spread = {c: {r.name: max(results[(r.name, r.steps, s)][0] for s in seeds)
                  - min(results[(r.name, r.steps, s)][0] for s in seeds) for r in plans[c]} for c in CONTRACTS}
    ranks = {c: ranking(losses[c]) for c in CONTRACTS}
    print(f"\n{'model':<10} {'P_total':>9} {'P_active':>9} {'contract':>9} {'tokens':>10} {'steps':>6} "
          f"{'tok/P_total':>11} {'tok/P_active':>12} {'val_loss':>8} {'spread':>6} {'rank':>4}")
    for c in CONTRACTS:
        for r in plans[c]:
            pc = r.counts
            print(f"{r.name:<10} {pc.total:>9,} {pc.active:>9,} {c:>9} {r.tokens:>10,} {r.steps:>6} "
                  f"{r.tokens / pc.total:>11.2f} {r.tokens / pc.active:>12.2f} {losses[c][r.name]:>8.3f} "
                  f"{spread[c][r.name]:>6.3f} "
                  f"{ranks[c].index(r.name) + 1:>4}")
    for c in CONTRACTS:
        print(f"ranking under {c + ':':<9} " + " < ".join(f"{n} ({losses[c][n]:.3f})" for n in ranks[c])
              + "   (val loss, best first)")
    print("(spread: max - min val loss over the seeds; a gap smaller than it is not a ranking)")
    same = ranks["totalDN"] == ranks["activeDN"]
    print(f"the ranking {'does not change' if same else 'changes'} with the contract")
    print(f"time: {len(jobs)} runs in {wall:.0f} s")
    return 0
