"""Does the load telemetry add up?

With sparse (and straight-through) gating each of a batch's T tokens is processed by K experts,
so the loads a step line lists (`expert_counts`) and the health report reads are whole numbers of
tokens that add up to T * K. Checked on fresh models of phase 36's lab settings, one batch of 16 x 64
tokens each, as `just moe-train` logs its steps.
"""

import torch

from minimoe.data import Batches
from minimoe.model import MiniLM
from minimoe.telemetry import routing_health

from .conftest import LAB


def _model_and_batch(corpus, seed, **moe):
    torch.manual_seed(seed)
    model = MiniLM(LAB.replace(model={"vocab_size": corpus.vocab_size}, moe=moe))
    x, _ = Batches(corpus.train_ids, LAB.model.context, LAB.train.batch, seed).next()
    return model, x


def test_a_batchs_loads_are_whole_tokens_adding_up_to_t_times_k(corpus, seed, observe):
    T = LAB.train.batch * LAB.model.context
    rows = []  # (how far off, what was measured)
    for gating, top_k in (("sparse", 1), ("sparse", 2), ("ste", 1)):
        model, x = _model_and_batch(corpus, seed, gating=gating, top_k=top_k)
        with torch.no_grad():
            _, routings = model(x)
        for i, r in enumerate(routings):
            load = r.load_E
            if gating == "sparse" and top_k == 2 and i == 0:
                observe("expert_counts_sum", float(load.sum()))
            off = max(abs(float(load.sum()) - T * top_k), float((load - load.round()).abs().max()))
            rows.append((off, f"{gating} top-{top_k}, MoE layer {i}: a batch of {T} tokens x {top_k} = "
                              f"{T * top_k} assignments, and the loads add up to {float(load.sum()):.1f}: "
                              f"{[round(v, 1) for v in load.tolist()]}"))
    worst = max(rows)
    observe("load_error", worst[0], 0.0, "<=")
    assert worst[0] == 0, worst[1]


def test_telemetry_sees_every_token_on_one_expert(corpus, seed, observe):
    """A selection bias of +100 on expert 0 sends every token there; the telemetry must show it."""
    model, x = _model_and_batch(corpus, seed, bias_update_rate=0.001)
    with torch.no_grad():
        for block in model.moe_blocks:
            block.router.bias_E[0] = 100.0  # aux-loss-free bias (phase 37)
        _, routings = model(x)
    health = routing_health(routings, model.moe_layers)
    observe("forced_max_load", min(h.max_load for h in health), 1.0, ">=")
    for h, r in zip(health, routings):
        on_zero = (r.ids_TK == 0).float().mean().item()
        assert h.max_load == 1.0 and h.dead == LAB.moe.experts - 1, (
            f"MoE layer {h.layer}, selection bias +100 on expert 0: {on_zero:.0%} of the tokens' picks are expert 0; "
            f"the telemetry shows max_load {h.max_load:.2f}, {h.dead} dead experts, counts "
            f"{[round(c, 1) for c in h.counts]}")
