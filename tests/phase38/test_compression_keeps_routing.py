"""Breaks 38-01 and 38-02's detectors: does compressing the experts leave the routing alone?

Only the token embeddings and the first block's attention come before the first MoE layer's
router, and compression touches neither, so compressing the experts cannot change where that
layer sends a token: only a changed router can. Measured on the 4096 held-out tokens of the lab
model over seeds 0-9: with the router kept, 0.0% of the tokens change their first-choice expert
after ternary quantisation or 50% pruning; with the router quantised too, 3-12%; with the router
pruned too, 2-9%.
"""

import copy

from minimoe.compress import prune_magnitude, quantize_ternary, routing_changes

from .conftest import held_out

MAX_CHANGED = 0.005  # fraction of tokens whose first-choice expert may change in the first MoE layer


def _first_layer_changes(run, corpus, compress_fn) -> float:
    compressed = copy.deepcopy(run.model)
    compress_fn(compressed)
    return routing_changes(run.model, compressed, held_out(corpus))[0]


def test_ternary_quantisation_keeps_the_routing(compress_lab_run, corpus, seed):
    changed = _first_layer_changes(compress_lab_run(seed), corpus, quantize_ternary)
    assert changed <= MAX_CHANGED, (
        f"after ternary quantisation {changed:.1%} of the tokens go to a different expert in the first MoE "
        "layer, whose input did not change: the router itself was changed")


def test_pruning_keeps_the_routing(compress_lab_run, corpus, seed):
    changed = _first_layer_changes(compress_lab_run(seed), corpus, prune_magnitude)
    assert changed <= MAX_CHANGED, (
        f"after 50% magnitude pruning {changed:.1%} of the tokens go to a different expert in the first MoE "
        "layer, whose input did not change: the router itself was changed")
