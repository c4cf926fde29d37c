"""`just experiment seeds`: one config trained on several seeds, the routing health side by side.

Takes every moe-train flag (and --config, e.g. a lab's labs/phase-NN-*/lab.yaml), plus --seeds N
(seeds 0..N-1) and --workers (parallel runs, one thread each). Prints, per seed, the numbers the
balance detectors read: the worst layer's max_load (share of the busiest expert), the mean load CV
over MoE layers, dead experts, E_eff and the val loss, then the min and max of each column. This is
how the labs measure a detector's margin: run it with the break off and on, and compare the ranges
with the threshold.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor

from ..config import Config, ConfigError, build_parser, config_file_in, config_from_args
from ..data import load_dataset
from ..train import train
from . import seed_table


def _one(args: tuple[dict, int]) -> dict:
    cfg_dict, seed = args
    cfg = Config.from_dict(cfg_dict).replace(train={"seed": seed, "threads": 1, "baseline": False, "out": ""})
    res = train(cfg, load_dataset(cfg.train.data, cfg.model.context))
    s = res.summary
    return {"seed": seed, "max_load": s.max_load, "mean_cv": s.mean_cv_pct, "dead": s.dead, "e_eff": s.e_eff,
            "val_loss": res.final.val_loss}


COLUMNS = {"max_load": ".3f", "mean_cv": ".1f", "dead": "d", "e_eff": ".2f", "val_loss": ".3f"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        p = build_parser("experiment seeds", __doc__.splitlines()[0], config_file_in(argv))
        extra = p.add_argument_group("seeds")
        extra.add_argument("--seeds", type=int, default=10, help="train on seeds 0..N-1")
        extra.add_argument("--workers", type=int, default=2, help="runs in parallel (one thread each)")
        args = p.parse_args(argv)
        seeds, workers = args.seeds, args.workers
        cfg = config_from_args(args)
        if seeds < 1 or workers < 1:
            raise ConfigError("--seeds and --workers must be at least 1")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    jobs = [(cfg.to_dict(), s) for s in range(seeds)]
    with ProcessPoolExecutor(max(1, workers)) as ex:
        rows = list(ex.map(_one, jobs))
    print(seed_table(rows, COLUMNS, 8))
    return 0
