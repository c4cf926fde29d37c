"""Does compressing the experts leave the routing alone?

Only the token embeddings and the first block's attention come before the first MoE layer's
router, and compression touches neither, so compressing the experts cannot change where that
layer sends a token. Measured on the 4,096 held-out tokens of `just compress`'s model, as its
report line "tokens whose first-choice expert changed: L0 ..." measures it.
"""

import copy

from minimoe.compress import prune_magnitude, quantize_ternary, routing_changes

from .conftest import held_out

MAX_CHANGED = 0.005  # fraction of tokens whose first-choice expert may change in the first MoE layer


def _first_layer_changes(run, corpus, compress_fn) -> list[float]:
    compressed = copy.deepcopy(run.model)
    compress_fn(compressed)
    return routing_changes(run.model, compressed, held_out(corpus))


def test_ternary_quantisation_keeps_the_routing(compress_lab_run, corpus, seed, observe):
    changes = _first_layer_changes(compress_lab_run(seed), corpus, quantize_ternary)
    observe("ternary_changed_L0", changes[0], MAX_CHANGED, "<=")
    assert changes[0] <= MAX_CHANGED, (
        f"after ternary quantisation {changes[0]:.1%} of the held-out tokens go to another first-choice "
        f"expert in the first MoE layer (per MoE layer: {[f'{c:.1%}' for c in changes]})")


def test_pruning_keeps_the_routing(compress_lab_run, corpus, seed, observe):
    changes = _first_layer_changes(compress_lab_run(seed), corpus, prune_magnitude)
    observe("prune_changed_L0", changes[0], MAX_CHANGED, "<=")
    assert changes[0] <= MAX_CHANGED, (
        f"after 50% magnitude pruning {changes[0]:.1%} of the held-out tokens go to another first-choice "
        f"expert in the first MoE layer (per MoE layer: {[f'{c:.1%}' for c in changes]})")
