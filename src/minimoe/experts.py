"""The experts: E SwiGLU feed-forward networks stored as stacked weights.

One expert is the same SwiGLU FFN a dense layer uses (Shazeer, 2020, "GLU Variants Improve
Transformer"):

    ffn(x) = (silu(x @ W_gate) * (x @ W_up)) @ W_down

Stacking the E experts' weights into (E, D, F) and (E, F, D) tensors lets one grouped matmul
run every expert at once over tokens sorted by expert (see dispatch.py), instead of a Python
loop over experts.

`init="same"` starts every expert from one random draw. Averaging experts (phase 39) is only a
fair test when they started equal: independently drawn experts average to weights about
1/sqrt(E) smaller, which is damage from the init, not from what the experts learned.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import grouped_mm, grouped_mm_wgrad


def init_ffn_weights(n: int, width: int, hidden: int, depth_scale: float,
                     same: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Initial (gate, up, down) weights for n FFNs: in-projections std 1/sqrt(D), out-projection
    std 1/sqrt(F) times depth_scale (1/sqrt(2 * layers), so the residual stream does not grow with depth)."""
    m = 1 if same else n
    w_gate = torch.randn(m, width, hidden) / math.sqrt(width)
    w_up = torch.randn(m, width, hidden) / math.sqrt(width)
    w_down = torch.randn(m, hidden, width) / math.sqrt(hidden) * depth_scale
    if same:
        w_gate, w_up, w_down = (w.expand(n, -1, -1).clone() for w in (w_gate, w_up, w_down))
    return w_gate, w_up, w_down


def swiglu(x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor) -> torch.Tensor:
    """One dense SwiGLU FFN: x_TD with (D, F), (D, F), (F, D) weights."""
    return (F.silu(x @ w_gate) * (x @ w_up)) @ w_down


class _SwiGLUExperts(torch.autograd.Function):
    """All E experts' SwiGLU as one autograd node, on rows grouped by expert.

    Two layouts of the rows (dispatch.py picks one):
      ragged  x_AD, offsets_E: each expert's rows contiguous, any number of them (grouped matmuls);
      padded  x_ECD: C rows per expert, unused rows zero (batched matmuls, one call for all E).

    Written by hand rather than left to autograd because it saves only x, g and u (autograd
    would also keep silu(g) and h) and computes h again in the backward pass: an elementwise
    op is cheaper than holding another (A, F) tensor. Backward, with h = silu(g) * u, y = h @ W_down:
        dW_down = h^T dy           dh = dy W_down^T
        dg = dh * u * silu'(g)     du = dh * silu(g)
        dW_gate = x^T dg           dW_up = x^T du           dx = dg W_gate^T + du W_up^T
    """

    @staticmethod
    def forward(ctx, x, w_gate_EDF, w_up_EDF, w_down_EFD, offsets_E):
        mm = torch.bmm if offsets_E is None else (lambda a, w: grouped_mm(a, w, offsets_E))
        g, u = mm(x, w_gate_EDF), mm(x, w_up_EDF)
        ctx.save_for_backward(x, g, u, w_gate_EDF, w_up_EDF, w_down_EFD, offsets_E)
        return mm(F.silu(g) * u, w_down_EFD)

    @staticmethod
    def backward(ctx, dy):
        x, g, u, w_gate_EDF, w_up_EDF, w_down_EFD, offsets_E = ctx.saved_tensors
        if offsets_E is None:
            mm, wgrad = torch.bmm, (lambda a, b: torch.bmm(a.transpose(1, 2), b))
        else:
            mm, wgrad = (lambda a, w: grouped_mm(a, w, offsets_E)), (lambda a, b: grouped_mm_wgrad(a, b, offsets_E))
        silu_g = F.silu(g)
        dw_down = wgrad(silu_g * u, dy)
        dh = mm(dy, w_down_EFD.transpose(-2, -1))
        dg = torch.ops.aten.silu_backward(dh * u, g)  # dh * u * silu'(g), fused
        du = dh * silu_g
        dx = mm(dg, w_gate_EDF.transpose(-2, -1)) + mm(du, w_up_EDF.transpose(-2, -1))
        return dx, wgrad(x, dg), wgrad(x, du), dw_down, None


class Experts(nn.Module):
    """E SwiGLU experts: w_gate_EDF, w_up_EDF, w_down_EFD."""

    def __init__(self, experts: int, width: int, hidden: int, depth_scale: float = 1.0, init: str = "independent"):
        super().__init__()
        w_gate, w_up, w_down = init_ffn_weights(experts, width, hidden, depth_scale, same=(init == "same"))
        self.w_gate_EDF = nn.Parameter(w_gate)
        self.w_up_EDF = nn.Parameter(w_up)
        self.w_down_EFD = nn.Parameter(w_down)

    @property
    def n(self) -> int:
        return self.w_gate_EDF.shape[0]

    def forward(self, x: torch.Tensor, offsets_E: torch.Tensor | None = None) -> torch.Tensor:
        """Every expert on its own rows: x_AD sorted by expert with offsets_E[e] the end row of expert
        e's group (ragged), or x_ECD with C rows per expert and offsets_E None (padded)."""
        return _SwiGLUExperts.apply(x, self.w_gate_EDF, self.w_up_EDF, self.w_down_EFD, offsets_E)

    def one(self, e: int, x_TD: torch.Tensor) -> torch.Tensor:
        """Expert e alone on x_TD (used by the reference loop and the soft-gating path)."""
        return swiglu(x_TD, self.w_gate_EDF[e], self.w_up_EDF[e], self.w_down_EFD[e])
