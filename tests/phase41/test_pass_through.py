"""A token that finds its experts full: what does the MoE layer add to it?

The MoE layer's output is added to the residual stream (model.py's Block). A token whose every
assignment was dropped should get nothing from the layer, so that it reaches the next block as it came;
a token with room everywhere should get exactly what the dropless layer gives it.
"""

import torch

from .conftest import lab_block

TOKENS = 64  # a batch of 64 tokens: at C = 0.25 each of the 4 experts keeps 8 of the 128 assignments


def test_a_token_every_expert_dropped_gets_nothing_from_the_layer(seed, observe):
    block = lab_block(seed, capacity_factor=0.25)
    x = torch.randn(TOKENS, block.experts.w_gate_EDF.shape[1], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y, r = block(x)
    lost_T = ~r.kept_TK.any(dim=1)  # tokens none of whose assignments was kept
    assert lost_T.sum() >= TOKENS // 4, f"only {int(lost_T.sum())} of {TOKENS} tokens lost every assignment"
    added = y[lost_T].norm(dim=1)
    observe("added_norm", added.max(), 0.0, "<=")
    assert added.max() == 0, (
        f"{int(lost_T.sum())} of {TOKENS} tokens had every assignment dropped (capacity {r.capacity} per expert); "
        f"the layer still adds to them a vector of norm {added.min():.3f} to {added.max():.3f} "
        f"(their input's norm: {x[lost_T].norm(dim=1).mean():.3f} on average)")


def test_with_room_for_every_assignment_the_layer_gives_the_dropless_output(seed, observe):
    capped = lab_block(seed, capacity_factor=4.0)  # C = E: room for every assignment, even all on one expert
    dropless = lab_block(seed, capacity_factor=0.0)
    x = torch.randn(TOKENS, capped.experts.w_gate_EDF.shape[1], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y, r = capped(x)
        want, _ = dropless(x)
    assert bool(r.kept_TK.all()), f"{int((~r.kept_TK).sum())} assignments dropped with room for all"
    gap = (y - want).abs().max()
    observe("gap", gap, 1e-5, "<=")
    assert gap < 1e-5, (
        f"with room for every assignment (capacity {r.capacity}, nothing dropped) the layer's output differs from "
        f"the dropless layer's by up to {gap:.4f} (output norms: {y.norm(dim=1).mean():.3f} vs "
        f"{want.norm(dim=1).mean():.3f} on average)")
