"""Dispatch: send each token to its K experts, run them, and combine the results.

The fast path, `moe_forward`, never loops over tokens or experts in Python. Its steps:

    1. sort the A = T*K (token, expert) assignments by expert (stable: each expert sees its
       tokens in order) and count each expert's tokens;
    2. give every assignment a row, in one of two layouts:
         ragged  each expert's rows contiguous, A rows in all; the experts run as grouped
                 matmuls (torch._grouped_mm, or the Triton kernel on a GPU);
         padded  a block of C rows per expert, C = the busiest expert's count, E*C rows in
                 all, the spare rows zero; the experts run as batched matmuls (torch.bmm);
    3. gather the tokens into their rows: x_RD (R = A or E*C);
    4. run every expert on its rows (experts.py);
    5. gather each assignment's output back in (token, k) order and sum a token's K outputs,
       weighted by the router's combine weights (a gather and a sum: no index_add onto tokens).

Why two layouts: on a CPU, torch._grouped_mm runs one matmul per expert, about 10 us each
beyond the arithmetic, so with thousands of experts of a few tokens each the overhead is most
of the time. A batched matmul does all E at once, paying instead for the padding rows. So
`choose_layout` pads when the padding costs less than that overhead, about PADDING_ROWS rows
per expert (measured on a 2-core x86 CPU, D=64, F=128; see bench.py). Either way the cost
grows with T*K, plus a term in E that every implementation pays: the E experts' weights and
gradients are read and written once per step. On a GPU the ragged layout is always used.

`moe_forward_reference` beside it is the plain loop a reader checks it against: for each
expert, mask its tokens, run it, add the result back. The tests prove the two equal, forward
and backward, in both layouts.

`soft_forward` is soft (dense) gating: every expert runs on every token and the outputs are
blended by the router's probabilities. No routing decisions, so nothing can collapse, but the
compute is E times a single expert's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .experts import Experts

LAYOUTS = ("ragged", "padded")
PADDING_ROWS = 35  # padding rows per expert that cost as much as one more grouped-matmul group (CPU)


def choose_layout(E: int, A: int, capacity: int, x: torch.Tensor) -> str:
    """ragged or padded for A assignments over E experts, the busiest of which got `capacity`."""
    if x.is_cuda:
        return "ragged"
    return "padded" if E * capacity - A <= PADDING_ROWS * E else "ragged"


def moe_forward(x_TD: torch.Tensor, ids_TK: torch.Tensor, weights_TK: torch.Tensor,
                experts: Experts, layout: str | None = None) -> torch.Tensor:
    """Sparse MoE output y_TD = sum_k weights_TK[t, k] * expert_{ids_TK[t, k]}(x_TD[t]).

    layout: "ragged", "padded" or None (choose_layout decides); the result is the same.
    """
    T, K = ids_TK.shape
    E, A = experts.n, T * K
    expert_A, order_A = ids_TK.reshape(-1).sort(stable=True)  # 1. sorted by expert; order_A: which (t, k)
    count_E = torch.bincount(expert_A, minlength=E)
    C = int(count_E.max()) if A else 0
    layout = layout or choose_layout(E, A, C, x_TD)
    if layout == "padded":  # 2. row = the expert's block of C rows + the assignment's rank within it
        start_E = count_E.cumsum(0) - count_E
        row_A = expert_A * C + torch.arange(A, device=x_TD.device) - start_E[expert_A]
        token_R = torch.full((E * C,), T, device=x_TD.device)  # spare rows read row T of x: zeros
        token_R[row_A] = order_A // K
        x_RD = F.pad(x_TD, (0, 0, 0, 1)).index_select(0, token_R)  # 3.
        y_RD = experts(x_RD.view(E, C, -1)).view(E * C, -1)  # 4. (E, C, D) -> (E, C, D)
    elif layout == "ragged":
        row_A = torch.arange(A, device=x_TD.device)
        x_RD = x_TD.index_select(0, order_A // K)  # 3.
        y_RD = experts(x_RD, count_E.cumsum(0))  # 4. offsets_E: the end row of each expert's group
    else:
        raise ValueError(f"layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    row_TK = torch.empty_like(row_A)  # 5. the row holding each (t, k)'s output
    row_TK[order_A] = row_A
    y_TKD = y_RD.index_select(0, row_TK).view(T, K, -1)
    return (y_TKD * weights_TK.unsqueeze(-1).to(y_TKD.dtype)).sum(dim=1)


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
