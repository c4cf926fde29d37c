"""`just experiment router_checks`: the router quantities phase 36's weight and gradient tests read.

For each seed: a fresh model with phase 36's lab settings (labs/phase-36-*/lab.yaml; moe-train flags
change them) and one batch of 8 x 64 tokens. Printed per seed:

  grad_k1     the smallest router gradient norm over MoE layers, from the main loss alone, at K=1
  sum_err_k2  the largest |sum of a token's combine weights - 1| at K=2
  w_min       the smallest combine weight at K=1 and K=2 (must be >= 0)
  w_max       the largest combine weight (must be <= 1)
  p_sum_err   the largest |sum over E of a token's router probabilities - 1|

Run it on any code to see how far each quantity is from its limit.
"""

from __future__ import annotations

import sys

import torch

from ..config import ConfigError, build_parser, config_file_in, config_from_args
from ..data import Batches, load_dataset
from ..loss import main_loss_fn
from ..model import MiniLM
from . import lab_config, seed_table


def measure(cfg, data, seed: int) -> dict:
    def model_and_batch(top_k):
        torch.manual_seed(seed)
        model = MiniLM(cfg.replace(model={"vocab_size": data.vocab_size}, moe={"top_k": top_k}))
        x, y = Batches(data.train_ids, cfg.model.context, 8, seed).next()
        return model, x, y

    model, x, y = model_and_batch(1)
    logits, _ = model(x)
    main_loss_fn(logits, y).backward()
    grads = [b.router.weight.grad.norm().item() if b.router.weight.grad is not None else 0.0
             for b in model.moe_blocks]
    row = {"grad_k1": min(grads), "sum_err_k2": 0.0, "w_min": float("inf"), "w_max": float("-inf"), "p_sum_err": 0.0}
    for k in (1, 2):
        model, x, _ = model_and_batch(k)
        with torch.no_grad():
            _, routings = model(x)
        for r in routings:
            if k == 2:
                row["sum_err_k2"] = max(row["sum_err_k2"], (r.weights_TK.sum(-1) - 1).abs().max().item())
            row["w_min"] = min(row["w_min"], r.weights_TK.min().item())
            row["w_max"] = max(row["w_max"], r.weights_TK.max().item())
            row["p_sum_err"] = max(row["p_sum_err"], (r.probs_TE.sum(-1) - 1).abs().max().item())
    return row


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        p = build_parser("experiment router_checks", __doc__.split("\n\n")[0], config_file_in(argv, lab_config(36)))
        p.add_argument_group("checks").add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
        args = p.parse_args(argv)
        seeds, cfg = args.seeds, config_from_args(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    data = load_dataset(cfg.train.data, cfg.model.context)
    rows = [measure(cfg, data, s) for s in range(seeds)]
    print(seed_table(rows, dict.fromkeys(("grad_k1", "sum_err_k2", "w_min", "w_max", "p_sum_err"), ".3g"), 10))
    return 0
