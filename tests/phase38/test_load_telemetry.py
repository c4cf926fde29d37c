"""Break 38-03's detectors: does the load telemetry count the tokens each expert really processed?

With sparse (and straight-through) gating an expert's load is the number of (token, expert)
assignments dispatched to it: whole numbers that add up to T*K. The router's probability mass is
a different quantity (soft gating reports it, because there every expert processes every token):
it can stay spread out while the tokens themselves pile onto one expert, so a load measured that
way softens collapse or misses it (seed 001 could not see its 98/2 split until it logged the real
token counts).
"""

import torch

from minimoe.data import Batches
from minimoe.model import MiniLM
from minimoe.telemetry import routing_health

from .conftest import LAB


def _routings(corpus, seed, **moe):
    torch.manual_seed(seed)
    model = MiniLM(LAB.replace(model={"vocab_size": corpus.vocab_size}, moe=moe))
    x, _ = Batches(corpus.train_ids, LAB.model.context, 8, seed).next()
    return model, x


def test_load_counts_the_dispatched_tokens(corpus, seed):
    for gating, top_k in (("sparse", 1), ("sparse", 2), ("ste", 1)):
        model, x = _routings(corpus, seed, gating=gating, top_k=top_k)
        with torch.no_grad():
            _, routings = model(x)
        for i, r in enumerate(routings):
            dispatched = torch.bincount(r.ids_TK.reshape(-1), minlength=LAB.moe.experts).float()
            assert torch.equal(r.load_E, dispatched), (
                f"{gating} top-{top_k}, MoE layer {i}: telemetry load {[round(v, 1) for v in r.load_E.tolist()]} "
                f"but the experts processed {dispatched.int().tolist()} tokens")


def test_telemetry_sees_every_token_on_one_expert(corpus, seed):
    """A selection bias sends every token to expert 0 while the probabilities stay near uniform."""
    model, x = _routings(corpus, seed, bias_update_rate=0.001)
    with torch.no_grad():
        for block in model.moe_blocks:
            block.router.bias_E[0] = 100.0  # aux-loss-free bias: steers the pick, not the weights
        _, routings = model(x)
    for h in routing_health(routings, model.moe_layers):
        assert h.max_load == 1.0 and h.dead == LAB.moe.experts - 1, (
            f"MoE layer {h.layer}: every token went to expert 0, but the telemetry shows max_load "
            f"{h.max_load:.2f} and {h.dead} dead experts (counts {[round(c, 1) for c in h.counts]})")
