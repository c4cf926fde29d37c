"""`just experiment expert_parallel`: is the model trained on N ranks the one-process model?

Expert parallelism changes where the experts run, never what the model computes: the same seed on 1, 2
or 4 ranks must give the one-process losses and routing counts up to float rounding (sums taken in
another order). The model is phase 42's (labs/phase-42-expert-parallelism/lab.yaml: E=8, top-2, width
16, 16 sequences of 64 tokens); moe-train flags change it. For each N in --ranks this starts N local
ranks (gloo on 127.0.0.1, parallel.spawn_local; N = 1 runs the all-to-all path on one rank) and
trains --steps steps on each seed, then compares with the one-process run:

  d_main, d_aux     the largest difference over the steps of the main and aux losses
  counts_off        logged steps where some expert's token count differs (the routing decisions)
  first_off         the first of them ("-": none)
  drift_from        the first step whose main losses differ by more than DRIFT ("-": none): from there
                    the runs no longer differ by rounding alone (a near-tie top-k choice went the other way)
  d_val             the difference of the val loss after training
  router_spread     the largest difference between the ranks' router weights (replicas must agree)

and prints, on `time:` lines, each run's training time and each rank's all-to-all share of it.

    just experiment expert_parallel                      N = 1, 2, 4; 50 steps; seed 0
    just experiment expert_parallel --steps 300 --seeds 3
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

from ..config import Config, ConfigError, build_parser, config_file_in, config_from_args
from ..data import Batches, load_dataset
from ..model import MiniLM
from ..parallel import ExpertParallel, spawn_local
from ..train import RunResult, train
from . import lab_config

TIMEOUT_S = 600.0  # the whole job of one N, all seeds
DRIFT = 1e-5  # float32 rounding of a loss near 2 is about 1e-7; a hundred times that is no longer rounding


def job_config(cfg: Config, seed: int, steps: int, world: int) -> Config:
    return cfg.replace(train={"seed": seed, "steps": steps, "expert_parallel": world, "threads": 1,
                              "baseline": False, "out": "", "save": "", "load": ""})


def rank_job(rank: int, world: int, cfg_dict: dict, seeds: list[int], steps: int, out: str) -> None:
    """One rank: per seed, the lab model's logits on this rank's rows at init, then a training run."""
    torch.set_num_threads(1)
    results = {}
    for seed in seeds:
        cfg = job_config(Config.from_dict(cfg_dict), seed, steps, world)
        data = load_dataset(cfg.train.data, cfg.model.context)
        torch.manual_seed(seed)
        model = MiniLM(cfg.replace(model={"vocab_size": data.vocab_size}))
        x_BS, _ = Batches(data.train_ids, cfg.model.context, cfg.train.batch, seed).next()
        par = ExpertParallel(rank, world)
        par.shard(model)
        with torch.no_grad():
            logits = model(par.rows(x_BS))[0]
        res = train(cfg, data, par=ExpertParallel(rank, world))
        results[seed] = {"logits": logits, "main": [h["main"] for h in res.history],
                         "aux": [h["aux"] for h in res.history], "counts": [e["counts"] for e in res.log],
                         "router": [b.router.weight.detach().clone() for b in res.model.moe_blocks],
                         "val_loss": res.final.val_loss, "seconds": res.seconds,
                         "parallel": res.extra["parallel"]}
    torch.save(results, Path(out) / f"rank{rank}.pt")


def run_ranks(cfg: Config, world: int, seeds: list[int], steps: int, timeout: float = TIMEOUT_S) -> list[dict]:
    """Every rank's results (rank_job) of a job of `world` local ranks: [rank][seed] -> dict."""
    with tempfile.TemporaryDirectory(prefix="minimoe-ep-") as tmp:
        spawn_local(rank_job, world, (cfg.to_dict(), seeds, steps, tmp), timeout)
        return [torch.load(Path(tmp) / f"rank{r}.pt", weights_only=True) for r in range(world)]


def one_process(cfg: Config, seed: int, steps: int) -> RunResult:
    return train(job_config(cfg, seed, steps, 1))


def reference_logits(cfg: Config, seed: int) -> torch.Tensor:
    """The one-process model's logits at init on the whole first batch (rank_job's forward, unsharded)."""
    data = load_dataset(cfg.train.data, cfg.model.context)
    torch.manual_seed(seed)
    model = MiniLM(cfg.replace(model={"vocab_size": data.vocab_size}))
    x_BS, _ = Batches(data.train_ids, cfg.model.context, cfg.train.batch, seed).next()
    with torch.no_grad():
        return model(x_BS)[0]


def compare(ref: RunResult, ranks: list[dict]) -> dict:
    """How far a job's rank 0 (and its replicas) is from the one-process run."""
    r0 = ranks[0]
    counts = [e["counts"] for e in ref.log]
    off = [e["step"] for a, e in zip(r0["counts"], ref.log) if a != e["counts"]]
    drift = [b["step"] for a, b in zip(r0["main"], ref.history) if abs(a - b["main"]) > DRIFT]
    return {
        "d_main": max(abs(a - b["main"]) for a, b in zip(r0["main"], ref.history)),
        "first_off": off[0] if off else None,
        "drift_from": drift[0] if drift else None,
        "d_aux": max(abs(a - b["aux"]) for a, b in zip(r0["aux"], ref.history)),
        "counts_off": sum(a != b for a, b in zip(r0["counts"], counts)),
        "d_val": abs(r0["val_loss"] - ref.final.val_loss),
        "router_spread": max(float((r["router"][i] - r0["router"][i]).abs().max())
                             for r in ranks for i in range(len(r0["router"]))),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        p = build_parser("experiment expert_parallel", __doc__.splitlines()[0], config_file_in(argv, lab_config(42)),
                         skip=("expert_parallel",))
        g = p.add_argument_group("expert parallel")
        g.add_argument("--ranks", default="1,2,4", help="numbers of ranks to compare with one process")
        g.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1")
        args = p.parse_args(argv)
        cfg = config_from_args(args, lab_config(42))
        try:
            worlds = [int(n) for n in args.ranks.split(",") if n.strip()]
        except ValueError:
            raise ConfigError(f"--ranks {args.ranks!r}: give whole numbers separated by commas, e.g. 1,2,4") from None
        if not worlds or args.seeds < 1:
            raise ConfigError("--ranks needs at least one number and --seeds must be at least 1")
        for n in worlds:  # the same checks as --expert-parallel N
            job_config(cfg, 0, cfg.train.steps, n)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    steps, seeds = cfg.train.steps, list(range(args.seeds))
    refs = {s: one_process(cfg, s, steps) for s in seeds}
    print(f"E={cfg.moe.experts} K={cfg.moe.top_k} batch={cfg.train.batch}x{cfg.model.context}, {steps} steps; "
          "each N ranks against one process:")
    print(f"{'ranks':>5}  {'seed':>4}  {'d_main':>9}  {'d_aux':>9}  {'counts_off':>10}  {'first_off':>9}  "
          f"{'drift_from':>10}  {'d_val':>9}  {'router_spread':>13}")
    timings = [f"time: one process: {refs[s].seconds:.2f} s training (seed {s})" for s in seeds]
    worst = 0.0
    for n in worlds:
        ranks = run_ranks(cfg, n, seeds, steps)
        for s in seeds:
            c = compare(refs[s], [r[s] for r in ranks])
            worst = max(worst, c["d_main"])
            first, drift = ("-" if c[k] is None else str(c[k]) for k in ("first_off", "drift_from"))
            print(f"{n:>5}  {s:>4}  {c['d_main']:9.2e}  {c['d_aux']:9.2e}  {c['counts_off']:>10d}  {first:>9}  "
                  f"{drift:>10}  {c['d_val']:9.2e}  {c['router_spread']:13.2e}")
            shares = ", ".join(f"{100 * t['a2a_share']:.0f}%" for t in ranks[0][s]["parallel"])
            timings.append(f"time: {n} rank(s): {ranks[0][s]['seconds']:.2f} s training (seed {s}); "
                           f"all-to-all share per rank {shares}")
    print(f"largest main-loss difference from one process: {worst:.2e}")
    print("\n".join(timings))
    return 0
