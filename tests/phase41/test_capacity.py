"""How many assignments does each expert keep?

Capacity factor C: each expert may take C times an even share of the batch's T*K assignments. The
routings here are drawn from the seed, with exact counts, so the checks are exact: when every expert is
asked for exactly an even share, C = 1 must leave room for all of them; an expert asked for more than
its capacity keeps exactly its capacity, one asked for less keeps all of its own.
"""

import torch

from minimoe.capacity import expert_capacity, keep_within_capacity
from minimoe.config import DROP_POLICIES

from .conftest import LAB

T = 512  # tokens in the drawn batches


def balanced_routing(seed: int, T: int, E: int, K: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ids_TK where every expert gets exactly T*K/E assignments and no token picks an expert twice."""
    g = torch.Generator().manual_seed(seed)
    ids_TK = (torch.arange(T).unsqueeze(1) + torch.arange(K) * (E // K)) % E  # a token's K experts differ
    ids_TK = ids_TK[torch.randperm(T, generator=g)]
    return ids_TK, torch.rand(T, E, generator=g).softmax(-1)


def skewed_routing(seed: int, T: int, E: int, K: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A router's choices on logits that favour some experts: some experts overflow, others do not."""
    g = torch.Generator().manual_seed(seed)
    logits_TE = torch.randn(T, E, generator=g) + torch.linspace(0, 1.5, E)[torch.randperm(E, generator=g)]
    return logits_TE.topk(K, dim=-1).indices, logits_TE.softmax(-1)


def test_balanced_routing_loses_no_assignment_at_capacity_factor_1(seed, observe):
    E, K = LAB.moe.experts, LAB.moe.top_k
    ids_TK, probs_TE = balanced_routing(seed, T, E, K)
    asked_E = torch.bincount(ids_TK.reshape(-1), minlength=E)
    capacity = expert_capacity(T, K, E, 1.0)
    kept = {policy: keep_within_capacity(ids_TK, probs_TE, capacity, policy) for policy in DROP_POLICIES}
    observe("dropped", max(int((~keep_TK).sum()) for keep_TK in kept.values()), 0, "<=")
    for policy, keep_TK in kept.items():
        kept_E = torch.bincount(ids_TK[keep_TK], minlength=E)
        assert bool(keep_TK.all()), (
            f"{policy} policy, C=1, {T} tokens x K={K} over E={E}: every expert is asked for "
            f"{asked_E.tolist()} assignments, has capacity {capacity}, keeps {kept_E.tolist()}; "
            f"{int((~keep_TK).sum())} of {T * K} dropped")


def test_a_full_expert_keeps_exactly_its_capacity(seed, observe):
    """`kept_gap`: the largest difference, over the experts, the factors and the policies, between what an
    expert keeps and min(what it is asked for, its capacity)."""
    E, K = LAB.moe.experts, LAB.moe.top_k
    ids_TK, probs_TE = skewed_routing(seed, T, E, K)
    asked_E = torch.bincount(ids_TK.reshape(-1), minlength=E)
    rows = []
    for c in (0.75, 1.0, 1.25):
        capacity = expert_capacity(T, K, E, c)
        for policy in DROP_POLICIES:
            keep_TK = keep_within_capacity(ids_TK, probs_TE, capacity, policy)
            kept_E = torch.bincount(ids_TK[keep_TK], minlength=E)
            want_E = asked_E.clamp(max=capacity)
            rows.append((int((kept_E - want_E).abs().max()),
                         f"{policy} policy, C={c}: capacity {capacity} per expert; experts asked for "
                         f"{asked_E.tolist()} assignments keep {kept_E.tolist()}"))
    worst = max(rows)
    observe("kept_gap", worst[0], 0, "<=")
    assert worst[0] == 0, worst[1]
