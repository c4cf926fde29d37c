"""Capacity and token dropping (phase 41): an MoE layer whose experts take a bounded number of tokens.

With a capacity factor C > 0 (GShard, Lepikhin et al., 2020; Switch, Fedus et al., 2021) each expert
takes at most `expert_capacity` = ceil(C * T*K / E) assignments per batch. Each expert keeps its first
`capacity` assignments in an order of priority (`keep_within_capacity`) and drops the rest;
`moe_forward_dropping`, steps 2-4 of moe_block.py under the capacity, runs only the kept ones. A
dropped assignment adds nothing to its token, so a token every expert dropped leaves the layer as it
came: the residual stream carries it on. C = 0 is dropless: every assignment runs (MegaBlocks), and
MoEBlock takes moe_forward instead.
"""

from __future__ import annotations

import math

import torch

from .experts import Experts


def expert_capacity(tokens: int, top_k: int, experts: int, capacity_factor: float) -> int:
    """Assignments one expert may take in a batch of T tokens: C times an even share of the T*K."""
    return math.ceil(capacity_factor * tokens * top_k / experts)


def keep_within_capacity(ids_TK: torch.Tensor, probs_TE: torch.Tensor, capacity: int,
                         policy: str = "position") -> torch.Tensor:
    """keep_TK[t, k]: does assignment (t, k) fit in its expert's capacity? Each expert serves its
    assignments in an order of priority and keeps the first `capacity`. Every token's first choice comes
    before any token's second choice (GShard); among the tokens, `policy` decides:

        position     their place in the batch, earliest first (GShard, Switch)
        probability  their top router probability, most confident first (batch-prioritised
                     routing: Riquelme et al., 2021, V-MoE)
    """
    T, K = ids_TK.shape
    E = probs_TE.shape[-1]
    if policy == "probability":
        order_T = probs_TE.max(dim=-1).values.argsort(descending=True, stable=True)  # most confident first
    else:
        order_T = torch.arange(T, device=ids_TK.device)  # earliest first
    turn_T = torch.empty_like(order_T)
    turn_T[order_T] = torch.arange(T, device=ids_TK.device)  # each token's turn in the queue
    turn_TK = turn_T.unsqueeze(1) + T * torch.arange(K, device=ids_TK.device)  # every first choice before any second
    key_A = (ids_TK * (T * K) + turn_TK).reshape(-1)  # sort by expert, then by turn: each expert's queue in order
    queue_A = key_A.argsort()
    expert_A = ids_TK.reshape(-1)[queue_A]
    count_E = torch.bincount(expert_A, minlength=E)
    start_E = count_E.cumsum(0) - count_E  # where each expert's queue starts among the sorted assignments
    place_A = torch.arange(T * K, device=ids_TK.device) - start_E[expert_A]  # 0 for the first in the queue
    keep_A = torch.empty_like(place_A, dtype=torch.bool)
    keep_A[queue_A] = place_A < capacity
    return keep_A.view(T, K)


def moe_forward_dropping(x_TD: torch.Tensor, ids_TK: torch.Tensor, weights_TK: torch.Tensor, keep_TK: torch.Tensor,
                         experts: Experts) -> torch.Tensor:
    """Steps 2-4 under a capacity: only the kept assignments reach their experts.
    y_TD[t] = sum over the kept k of weights_TK[t, k] * expert_{ids_TK[t, k]}(x_TD[t])."""
    T, K = ids_TK.shape
    kept_A = keep_TK.reshape(-1).nonzero().squeeze(1)  # the kept assignments; a is (t, k) = divmod(a, K)
    expert_A, by_expert = ids_TK.reshape(-1)[kept_A].sort(stable=True)  # 2.
    kept_A = kept_A[by_expert]
    end_E = torch.bincount(expert_A, minlength=experts.n).cumsum(0)
    y_AD = experts(x_TD.index_select(0, kept_A // K), end_E)  # 3.
    w_A = weights_TK.reshape(-1)[kept_A].unsqueeze(-1).to(y_AD.dtype)
    y_TD = torch.zeros_like(x_TD)  # start from nothing: a dropped assignment adds nothing to its token
    return y_TD.index_add(0, kept_A // K, y_AD * w_A)  # 4.
