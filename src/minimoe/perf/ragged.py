"""moe_block.moe_forward (the ragged layout: rows sorted by expert, grouped matmuls) with a backward
that gathers where autograd would scatter.

Sorting the T*K assignments by expert is a permutation: row a holds assignment order_A[a], and
assignment (t, k) sits in row row_TK[t, k]. moe_forward's two index_selects (tokens into rows,
rows back to tokens) get from autograd a backward that zero-fills a tensor and adds into it with
index_add, rows colliding on the same token. Knowing the permutation, each backward is a gather
instead, with no zero-fill and no collisions:

    gather   x_AD = x_TD[order_A // K]             dx_TD = sum over k of dx_AD[row_TK[:, k]]
    combine  y_TD = sum_k w_TK * y_AD[row_TK]      dy_AD = (w_TK * dy_TD)[order_A],
                                                   dw_TK = <y_AD[row_TK], dy_TD>

Same arithmetic as moe_forward but for the order of the K terms summed into dx_TD (equal to 1e-6,
tested against the reference loop, forward and backward).
"""

from __future__ import annotations

import torch

from ..experts import Experts


class _Gather(torch.autograd.Function):
    """x_AD = x_TD[token_A]; the backward gathers each token's K rows and adds them."""

    @staticmethod
    def forward(ctx, x_TD, token_A, row_TK):
        ctx.save_for_backward(row_TK)
        return x_TD.index_select(0, token_A)

    @staticmethod
    def backward(ctx, dx_AD):
        (row_TK,) = ctx.saved_tensors
        T, K = row_TK.shape
        dx_TKD = dx_AD.index_select(0, row_TK.reshape(-1)).view(T, K, -1)
        return (dx_TKD[:, 0] if K == 1 else dx_TKD.sum(dim=1)), None, None


class _Combine(torch.autograd.Function):
    """y_TD = sum over k of w_TK[t, k] * y_AD[row_TK[t, k]]; the backward gathers by order_A."""

    @staticmethod
    def forward(ctx, y_AD, w_TK, row_TK, order_A):
        T, K = row_TK.shape
        y_TKD = y_AD.index_select(0, row_TK.reshape(-1)).view(T, K, -1)
        ctx.save_for_backward(y_TKD, w_TK, order_A)
        w_TK1 = w_TK.unsqueeze(-1).to(y_TKD.dtype)
        return (y_TKD[:, 0] * w_TK1[:, 0]) if K == 1 else (y_TKD * w_TK1).sum(dim=1)

    @staticmethod
    def backward(ctx, dy_TD):
        y_TKD, w_TK, order_A = ctx.saved_tensors
        dy_T1D = dy_TD.unsqueeze(1)
        dy_AD = (w_TK.unsqueeze(-1).to(dy_TD.dtype) * dy_T1D).view(-1, dy_TD.shape[-1]).index_select(0, order_A)
        dw_TK = (y_TKD * dy_T1D).sum(dim=-1).to(w_TK.dtype) if ctx.needs_input_grad[1] else None
        return dy_AD, dw_TK, None, None


def ragged_forward(x_TD: torch.Tensor, ids_TK: torch.Tensor, weights_TK: torch.Tensor,
                   experts: Experts) -> torch.Tensor:
    """moe_forward's steps 2-4, with the gathering backward above."""
    T, K = ids_TK.shape
    expert_A, order_A = ids_TK.reshape(-1).sort(stable=True)  # 2. row a holds assignment order_A[a]
    end_E = torch.bincount(expert_A, minlength=experts.n).cumsum(0)
    row_TK = torch.empty_like(order_A)
    row_TK[order_A] = torch.arange(T * K, device=x_TD.device)
    row_TK = row_TK.view(T, K)
    y_AD = experts(_Gather.apply(x_TD, order_A // K, row_TK), end_E)  # 3.
    return _Combine.apply(y_AD, weights_TK, row_TK, order_A)  # 4.
