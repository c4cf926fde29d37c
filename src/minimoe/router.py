"""The router: scores each token against every expert and decides where the token goes.

    logits_TE = x_TD @ W_router^T          one score per (token, expert)
    probs_TE  = softmax(logits_TE)          in fp32, over all E experts
    ids_TK    = top-k of the scores         which K experts each token visits
    weights_TK = probs at those ids         how much each visited expert's output counts
                 (renormalised to sum to 1 when K > 1, as in Mixtral)

Sources: Switch Transformer (Fedus et al., 2021) for top-1 with the probability as the combine
weight; Mixtral (Jiang et al., 2024) for top-k with renormalised weights; DeepSeek-V3 (2024,
sec. 2.1.2) for the aux-loss-free bias, which shifts *which* experts are picked but never the
weights.

Gating modes (`--gating`): sparse (top-k), ste (hard top-1 in the forward pass, gradient of the
softmax in the backward pass: the straight-through estimator), soft (every expert, blended by
probs_TE; no top-k at all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Routing:
    """What one MoE layer's router decided for a batch of T tokens."""

    logits_TE: torch.Tensor  # raw scores, fp32
    probs_TE: torch.Tensor  # softmax over the E experts, fp32
    ids_TK: torch.Tensor  # int64 expert ids each token visits (soft gating: its top-1, for the aux loss and telemetry)
    weights_TK: torch.Tensor  # combine weights of those experts (soft gating: the top-1's probability)
    load_E: torch.Tensor  # tokens routed to each expert (soft gating: gate mass), detached
    capacity: int = 0  # assignments an expert may take in this batch; 0 = dropless (moe_block.py sets it)
    kept_TK: torch.Tensor | None = None  # bool: which assignments fit in their expert's capacity (None: all)


def route(logits_TE: torch.Tensor, top_k: int, gating: str = "sparse",
          bias_E: torch.Tensor | None = None) -> Routing:
    """Turn router scores into expert choices and combine weights (pure: tensors in, Routing out)."""
    logits_TE = logits_TE.float()  # fp32 softmax: in bf16, near-ties flip the top-k
    probs_TE = logits_TE.softmax(dim=-1)
    if gating == "soft":  # every expert runs, weighted by probs_TE; the load is each expert's gate mass
        ids_TK = probs_TE.argmax(dim=-1, keepdim=True)
        return Routing(logits_TE, probs_TE, ids_TK, probs_TE.gather(-1, ids_TK), probs_TE.detach().sum(dim=0))

    select_TE = logits_TE if bias_E is None else logits_TE + bias_E  # the bias steers the pick, not the weights
    ids_TK = select_TE.topk(top_k, dim=-1).indices
    weights_TK = probs_TE.gather(-1, ids_TK)  # softmax over all E, then pick: at K=1 the router still learns
    if top_k > 1:
        weights_TK = weights_TK / weights_TK.sum(dim=-1, keepdim=True)  # each token's K weights sum to 1
    if gating == "ste":
        weights_TK = weights_TK + (1.0 - weights_TK).detach()  # forward: exactly 1.0; backward: d(prob)
    load_E = torch.bincount(ids_TK.reshape(-1), minlength=logits_TE.shape[-1]).float()
    return Routing(logits_TE, probs_TE, ids_TK, weights_TK, load_E)


class Router(nn.Module):
    """A bias-free linear scorer plus the aux-loss-free selection bias (a buffer, not a parameter)."""

    def __init__(self, width: int, experts: int, top_k: int, gating: str = "sparse",
                 init_std: float = 0.0, bias_update_rate: float = 0.0):
        super().__init__()
        std = init_std or 1.0 / math.sqrt(width)
        self.weight = nn.Parameter(torch.randn(experts, width) * std)  # (E, D), as in nn.Linear
        self.register_buffer("bias_E", torch.zeros(experts))
        self.top_k, self.gating, self.bias_update_rate = top_k, gating, bias_update_rate

    def forward(self, x_TD: torch.Tensor) -> Routing:
        logits_TE = x_TD.float() @ self.weight.float().t()
        bias_E = self.bias_E if self.bias_update_rate > 0 else None
        return route(logits_TE, self.top_k, self.gating, bias_E)

    @torch.no_grad()
    def update_bias(self, load_E: torch.Tensor) -> None:
        """DeepSeek-V3's aux-loss-free balancing, applied after each optimiser step.

        An expert that got fewer tokens than the mean gets its bias raised by bias_update_rate, one
        that got more gets it lowered; only the sign of the error is used, so the step is the same
        size whatever the imbalance.
        """
        if self.bias_update_rate <= 0:
            return
        error_E = load_E.mean() - load_E  # > 0: the expert is under-loaded
        self.bias_E += self.bias_update_rate * error_E.sign()
