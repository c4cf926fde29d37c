"""Dispatch: send each token to its K experts, run them, and combine the results.

The fast path never loops over tokens or experts in Python:

    1. flatten the T*K (token, expert) assignments and sort them by expert (stable, so each
       expert sees its tokens in order);
    2. gather the token rows in that order: x_AD, A = T*K, each expert's rows contiguous;
    3. one grouped matmul per weight runs every expert on its own rows (experts.py);
    4. scale each row by its combine weight and add it back to its token (index_add).

Its cost grows with T*K, not with E. `moe_forward_reference` beside it is the plain loop a
reader checks it against: for each expert, mask its tokens, run it, add the result back. The
tests prove the two equal, forward and backward.

`soft_forward` is soft (dense) gating: every expert runs on every token and the outputs are
blended by the router's probabilities. No routing decisions, so nothing can collapse, but the
compute is E times a single expert's.
"""

from __future__ import annotations

import torch

from .experts import Experts


def moe_forward(x_TD: torch.Tensor, ids_TK: torch.Tensor, weights_TK: torch.Tensor,
                experts: Experts, layout: str | None = None) -> torch.Tensor:
    """Sparse MoE output y_TD = sum_k weights_TK[t, k] * expert_{ids_TK[t, k]}(x_TD[t])."""
    T, K = ids_TK.shape
    E, A = experts.n, T * K
    ids_A = ids_TK.reshape(-1)
    count_E = torch.bincount(ids_A, minlength=E)
    order_A = ids_A.argsort(stable=True)  # 1. assignments grouped by expert, each expert's in token order
    expert_A = ids_A[order_A]
    capacity = int(count_E.max()) if A else 0
    layout = layout or choose_layout(E, A, capacity, x_TD)
    if layout == "padded":  # 2. row of each sorted assignment: its expert's block, then its rank in it
        rank_A = torch.arange(A) - (count_E.cumsum(0) - count_E)[expert_A]
        row_A = expert_A * capacity + rank_A
        R = E * capacity
    else:
        row_A, R = torch.arange(A), A
    token_R = torch.full((R,), T)  # padding rows read token T, a zero row
    token_R[row_A] = order_A // K
    x_RD = torch.nn.functional.pad(x_TD, (0, 0, 0, 1)).index_select(0, token_R)
    if layout == "padded":  # 3. every expert on its rows
        y_RD = experts(x_RD.view(E, capacity, -1)).view(R, -1)
    else:
        y_RD = experts(x_RD, count_E.cumsum(0))
    slot_TK = torch.empty_like(row_A)  # 4. each assignment's output row, back in (token, k) order
    slot_TK[order_A] = row_A
    y_TKD = y_RD.index_select(0, slot_TK).view(T, K, -1)
    return torch.bmm(weights_TK.unsqueeze(1).to(y_TKD.dtype), y_TKD).squeeze(1)  # sum_k w_tk y_tk


PADDED_SPEEDUP = 3.0


def choose_layout(E: int, A: int, capacity: int, x: torch.Tensor) -> str:
    if x.is_cuda:
        return "ragged"
    return "padded" if E * capacity <= PADDED_SPEEDUP * A else "ragged"


def moe_forward_reference(x_TD: torch.Tensor, ids_TK: torch.Tensor, weights_TK: torch.Tensor,
                          experts: Experts) -> torch.Tensor:
    """The same computation as a plain loop over experts (slow; the reference for tests and benchmarks)."""
    y_TD = torch.zeros_like(x_TD)
    for e in range(experts.n):
        token_N, slot_N = (ids_TK == e).nonzero(as_tuple=True)  # the N tokens that chose expert e
        if len(token_N):
            y_ND = experts.one(e, x_TD[token_N]) * weights_TK[token_N, slot_N].unsqueeze(-1).to(x_TD.dtype)
            y_TD = y_TD.index_add(0, token_N, y_ND)
    return y_TD


def soft_forward(x_TD: torch.Tensor, probs_TE: torch.Tensor, experts: Experts) -> torch.Tensor:
    """Soft gating: y_TD = sum_e probs_TE[t, e] * expert_e(x_TD[t]) over all E experts."""
    x_ETD = x_TD.unsqueeze(0).expand(experts.n, -1, -1)
    h_ETF = torch.nn.functional.silu(x_ETD @ experts.w_gate_EDF) * (x_ETD @ experts.w_up_EDF)
    y_ETD = h_ETF @ experts.w_down_EFD
    return torch.einsum("te,etd->td", probs_TE.to(x_TD.dtype), y_ETD)
