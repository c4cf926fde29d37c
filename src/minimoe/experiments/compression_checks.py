"""`just experiment compression_checks`: the quantities phase 38's and 39's compression tests read.

For each seed: the model `just compress` trains (phase 39's lab settings, labs/phase-39-*/lab.yaml:
E=16, top-2, expert width 16, same init, 300 steps of 16 x 64 tokens), then, each on its own copy.
One row per seed, then the min and max over the seeds; the columns:

  tern_L0    share of the 4096 held-out tokens whose first-choice expert in the first MoE layer
             changes after ternary quantisation (tests/phase38: <= 0.005)
  prune_L0   the same after 50% magnitude pruning (tests/phase38: <= 0.005)
  prune_x    perplexity after 50% pruning / the original's (tests/phase39: <= 3, LENIENT)
  prune_uniq distinct tokens in the pruned model's 100-token greedy sample (tests/phase39: >= 5)
  spread     expert spread after ternary / before, the smaller of the two layers (tests/phase39: >= 0.5)

Run it on any code to see how far each quantity is from its limit. Trained models are kept in
$MINIMOE_CACHE (keyed by the config, the seed and the source of everything but compress.py), so a
run with a compress.py break on reuses the pristine run's models.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import textwrap
from concurrent.futures import ProcessPoolExecutor

import torch

from ..checkpoint import CheckpointError, save_checkpoint
from ..compress import expert_diversity, prune_magnitude, quantize_ternary, routing_changes, score
from ..data import eval_windows, load_dataset
from ..files import cache_dir, source_fingerprint
from ..train import train
from . import lab_config, seed_table

COLUMNS = {"tern_L0": ".4f", "prune_L0": ".4f", "prune_x": ".2f", "prune_uniq": "d", "spread": ".3f"}


def lab_model(seed: int, data):
    """The trained lab model for `seed`, from the cache when it is there."""
    cfg = lab_config(39).replace(train={"threads": 1, "seed": seed, "baseline": False, "out": ""})
    key = hashlib.sha256(json.dumps([cfg.to_dict(), data.vocab, source_fingerprint(exclude=("compress.py",))],
                                    sort_keys=True).encode())
    path = cache_dir() / f"compress-lab-{key.hexdigest()[:20]}.pt"
    if path.is_file():
        try:
            return train(cfg.replace(train={"steps": 0, "load": str(path)}), data)
        except CheckpointError:
            pass  # a damaged cache entry is trained again
    res = train(cfg, data)
    save_checkpoint(str(path), res.model, res.cfg, data.vocab, cfg.train.steps)
    return res


def measure(seed: int) -> dict:
    torch.set_num_threads(1)
    data = load_dataset("", 64)
    res = lab_model(seed, data)
    model, cfg = res.model, res.cfg
    x_BS, _ = eval_windows(data.val_ids, cfg.model.context, cfg.train.eval_tokens)
    ternary, pruned = copy.deepcopy(model), copy.deepcopy(model)
    quantize_ternary(ternary)
    prune_magnitude(pruned, 0.5)
    s = score(pruned, data, res.final.perplexity)
    before, after = expert_diversity(model), expert_diversity(ternary)
    return {"seed": seed, "tern_L0": routing_changes(model, ternary, x_BS)[0],
            "prune_L0": routing_changes(model, pruned, x_BS)[0], "prune_x": s.ratio, "prune_uniq": s.unique,
            "spread": min(a["spread"] / b["spread"] for a, b in zip(after, before))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="experiment compression_checks", description=__doc__.split("\n\n")[0],
                                epilog=textwrap.dedent(__doc__.split("\n\n", 1)[1]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
    p.add_argument("--workers", type=int, default=2, help="seeds in parallel, one CPU thread each")
    args = p.parse_args(argv)
    with ProcessPoolExecutor(args.workers) as ex:
        rows = list(ex.map(measure, range(args.seeds)))
    print(seed_table(rows, COLUMNS, 10))
    return 0
