"""Are the combine weights a distribution over each token's experts?

A token's K combine weights each lie in [0, 1] and add up to 1 (K > 1: renormalised, as in
Mixtral; K = 1: the top probability alone); a token's router probabilities over the E experts add
up to 1. The weights are read as the routing health report reads them, on the 4,096 held-out
tokens: `w_sum`, `w_min` and `w_max` are its columns.
"""

import torch

from minimoe.data import Batches
from minimoe.evaluate import evaluate
from minimoe.model import MiniLM

from .conftest import LAB


def test_topk_weights_sum_to_one_per_token(corpus, seed, observe):
    """At --top-k 2, on a fresh lab model: `w_sum` is the mean over tokens of a token's two weights, on the
    held-out tokens as the health report reads them, and in a training forward pass."""
    torch.manual_seed(seed)
    model = MiniLM(LAB.replace(model={"vocab_size": corpus.vocab_size}, moe={"top_k": 2}))
    health = evaluate(model, corpus, LAB.train.eval_tokens).health
    model.train()  # and as training sees them: in training mode, with gradients on
    x, _ = Batches(corpus.train_ids, LAB.model.context, 8, seed).next()
    _, routings = model(x)
    sums = torch.cat([r.weights_TK.detach().sum(dim=-1) for r in routings])
    observe("w_sum_error_training", (sums - 1).abs().max().item())
    w_sum = min(h.weight_sum for h in health)
    worst = max(abs(h.weight_sum - 1) for h in health)
    observe("w_sum", w_sum)
    observe("w_sum_error", worst, 1e-5, "<=")
    assert worst < 1e-5, (
        f"at K=2 a token's two combine weights add up to {w_sum:.4g} on average (per MoE layer "
        f"{[round(h.weight_sum, 6) for h in health]}); weights range "
        f"{min(h.weight_min for h in health):.3g}..{max(h.weight_max for h in health):.3g}")
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5), (
        f"in a training step at K=2 a token's two combine weights add up to {sums.min().item():.4g}.."
        f"{sums.max().item():.4g}")


def test_combine_weights_are_probabilities(lab_run, corpus, seed, observe):
    """The trained lab model's weights (`just moe-train --steps 300`: w_min, w_max), and a fresh
    model's router probabilities at K=1 and K=2."""
    health = lab_run(seed).final.health
    w_min, w_max = min(h.weight_min for h in health), max(h.weight_max for h in health)
    observe("w_max", w_max)
    observe("w_min", w_min, 0.0, ">=")
    assert w_min >= 0 and w_max <= 1, (
        f"after training, combine weights range {w_min:.3f}..{w_max:.3f} (per MoE layer: "
        f"{[(round(h.weight_min, 3), round(h.weight_max, 3)) for h in health]})")
    for top_k in (1, 2):
        torch.manual_seed(seed)
        model = MiniLM(LAB.replace(model={"vocab_size": corpus.vocab_size}, moe={"top_k": top_k}))
        x, _ = Batches(corpus.train_ids, LAB.model.context, 8, seed).next()
        with torch.no_grad():
            _, routings = model(x)
        for r in routings:
            row = r.probs_TE.sum(-1)
            assert torch.allclose(row, torch.ones_like(row), atol=1e-5), (
                f"top-{top_k}: a token's router probabilities add up to {row.min().item():.3f}.."
                f"{row.max().item():.3f}")
