"""Breaks 36-03 and 36-04's detectors: are the combine weights a distribution over each token's experts?

A token's K combine weights must each lie in [0, 1] and sum to 1 (K > 1; Mixtral renormalises),
and the router's probabilities over all E experts must sum to 1.
"""

import torch

from minimoe.data import Batches
from minimoe.model import MiniLM

from .conftest import LAB


def _routings(corpus, seed, top_k):
    torch.manual_seed(seed)
    model = MiniLM(LAB.replace(model={"vocab_size": corpus.vocab_size}, moe={"top_k": top_k}))
    x, _ = Batches(corpus.train_ids, LAB.model.context, 8, seed).next()
    with torch.no_grad():
        _, routings = model(x)
    return routings


def test_topk_weights_sum_to_one_per_token(corpus, seed):
    for r in _routings(corpus, seed, top_k=2):
        sums = r.weights_TK.sum(dim=-1)
        worst = (sums - 1).abs().max().item()
        assert worst < 1e-5, (f"a token's top-2 weights sum to {sums.min().item():.4g}..{sums.max().item():.4g}, "
                              "not 1: the renormalisation is over the wrong set")


def test_combine_weights_are_probabilities(corpus, seed):
    for top_k in (1, 2):
        for r in _routings(corpus, seed, top_k):
            w = r.weights_TK
            assert w.min() >= 0 and w.max() <= 1, (
                f"top-{top_k} combine weights range {w.min().item():.3f}..{w.max().item():.3f}: not probabilities")
            row = r.probs_TE.sum(-1)
            assert torch.allclose(row, torch.ones_like(row), atol=1e-5), (
                f"router probabilities sum to {row.min().item():.3f}..{row.max().item():.3f} per token, not 1")
