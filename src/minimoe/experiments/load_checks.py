"""`just experiment load_checks`: the quantities phase 38's load-telemetry tests read.

For each seed, a fresh model with phase 36's lab settings (labs/phase-36-*/lab.yaml: E=4, expert
width 16, router init std 0.01) and one batch of 8 x 64 tokens:

  load_err   the largest |telemetry load - tokens dispatched| of an expert, over sparse top-1,
             sparse top-2 and straight-through top-1 (must be 0)
  sum_k2     what the load of one MoE layer adds up to at top-2 (the batch makes 512 x 2 = 1024
             assignments)
  forced     max_load the telemetry reports when a selection bias sends every token to expert 0
             (must be 1.0)
  dead       dead experts it reports then (must be E - 1 = 3)

Run it on any code to see how far each quantity is from its limit.
"""

from __future__ import annotations

import argparse

import torch

from ..data import Batches, load_dataset
from ..model import MiniLM
from ..telemetry import routing_health
from . import lab_config, seed_table


def measure(data, seed: int) -> dict:
    lab = lab_config(36)

    def run(**moe):
        torch.manual_seed(seed)
        model = MiniLM(lab.replace(model={"vocab_size": data.vocab_size}, moe=moe))
        x, _ = Batches(data.train_ids, lab.model.context, 8, seed).next()
        return model, x

    row = {"seed": seed, "load_err": 0.0}
    for gating, top_k in (("sparse", 1), ("sparse", 2), ("ste", 1)):
        model, x = run(gating=gating, top_k=top_k)
        with torch.no_grad():
            _, routings = model(x)
        for r in routings:
            dispatched = torch.bincount(r.ids_TK.reshape(-1), minlength=lab.moe.experts).float()
            row["load_err"] = max(row["load_err"], float((r.load_E - dispatched).abs().max()))
        if top_k == 2:
            row["sum_k2"] = float(routings[0].load_E.sum())
    model, x = run(bias_update_rate=0.001)
    with torch.no_grad():
        for block in model.moe_blocks:
            block.router.bias_E[0] = 100.0
        _, routings = model(x)
    health = routing_health(routings, model.moe_layers)
    row["forced"] = min(h.max_load for h in health)
    row["dead"] = min(h.dead for h in health)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="experiment load_checks", description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = load_dataset("", lab_config(36).model.context)
    rows = [measure(data, s) for s in range(args.seeds)]
    print(seed_table(rows, {"load_err": ".3f", "sum_k2": ".1f", "forced": ".3f", "dead": "d"}, 9))
    return 0
