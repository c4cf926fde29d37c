"""The experts: E SwiGLU feed-forward networks stored as stacked weights.

One expert is the same SwiGLU FFN a dense layer uses (Shazeer, 2020, "GLU Variants Improve
Transformer"):

    ffn(x) = (silu(x @ W_gate) * (x @ W_up)) @ W_down

Stacking the E experts' weights into (E, D, F) and (E, F, D) tensors lets every expert run at
once, instead of a Python loop over experts: grouped matmuls over tokens sorted by expert, or
the very same `swiglu` batched over a leading E axis when each expert's tokens are padded to a
common count (dispatch.py chooses). Autograd differentiates both. The third layout, tiers of
padded rows with some tiers holding only the busier experts, has its backward written out
(TieredSwiGLU), so that those tiers add into the weight gradient instead of each making a
full-size one.

`init="same"` starts every expert from one random draw. Averaging experts (phase 39) is only a
fair test when they started equal: independently drawn experts average to weights about
1/sqrt(E) smaller, which is damage from the init, not from what the experts learned.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import grouped_mm


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


def bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torch.bmm into a fresh output. On CPU, bmm(a, b) with a transposed `a` of few columns
    (the weight gradient x^T @ dh of a few rows per expert) took 50-300 ms at E=4096 where the same
    call with out= took 10 ms (torch 2.13, 2 cores), so the output is always passed."""
    return torch.bmm(a, b, out=a.new_empty(a.shape[0], a.shape[1], b.shape[2]))


class TieredSwiGLU(torch.autograd.Function):
    """The experts on tiers of padded rows: tier t is a batch of n_t experts with c_t rows each.

    `tiers` lists (ids, n, c): ids None means all E experts in order (their weights used as they
    are), else the n experts `ids`, whose weights are gathered. x_RD holds the tiers one after
    another, n*c rows each. The backward is written out because autograd would give every gathered
    tier a full-size (E, D, F) zero gradient to add into; here tier 0's batched matmul writes the
    weight gradient and the gathered tiers add into their experts' rows of it.
    """

    @staticmethod
    def forward(ctx, x_RD, w_gate_EDF, w_up_EDF, w_down_EFD, tiers):
        D, r, y_parts, saved = x_RD.shape[-1], 0, [], []
        for ids, n, c in tiers:
            x = x_RD[r : r + n * c].view(n, c, D)
            r += n * c
            wg, wu, wd = (w if ids is None else w.index_select(0, ids) for w in (w_gate_EDF, w_up_EDF, w_down_EFD))
            g, u = bmm(x, wg), bmm(x, wu)
            h = F.silu(g) * u
            y_parts.append(bmm(h, wd).view(n * c, D))
            saved.append((x, g, u, h, wg, wu, wd))
        ctx.tiers, ctx.saved, ctx.E = tiers, saved, w_gate_EDF.shape[0]
        return torch.cat(y_parts) if len(y_parts) > 1 else y_parts[0]

    @staticmethod
    def backward(ctx, dy_RD):
        D, r, dx_parts = dy_RD.shape[-1], 0, []
        grads = [None, None, None]  # d w_gate, d w_up, d w_down
        for (ids, n, c), (x, g, u, h, wg, wu, wd) in zip(ctx.tiers, ctx.saved):
            dy = dy_RD[r : r + n * c].view(n, c, D)
            r += n * c
            dh = bmm(dy, wd.transpose(1, 2))
            s = F.silu(g)
            dg = torch.ops.aten.silu_backward(dh * u, g)
            du = dh * s
            dx_parts.append((bmm(dg, wg.transpose(1, 2)) + bmm(du, wu.transpose(1, 2))).view(n * c, D))
            for i, dw in enumerate((bmm(x.transpose(1, 2), dg), bmm(x.transpose(1, 2), du),
                                    bmm(h.transpose(1, 2), dy))):
                if ids is None and grads[i] is None:
                    grads[i] = dw
                    continue
                if grads[i] is None:
                    grads[i] = dw.new_zeros((ctx.E, *dw.shape[1:]))
                if ids is None:
                    grads[i] += dw
                else:
                    grads[i].index_add_(0, ids, dw)
        ctx.saved = None
        dx = torch.cat(dx_parts) if len(dx_parts) > 1 else dx_parts[0]
        return dx, *grads, None


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
        """Every expert on its own rows, in one of the two layouts dispatch.py builds:

        ragged  x_AD sorted by expert, offsets_E[e] the end row of expert e: three grouped matmuls;
        padded  x_ECD, C rows per expert (offsets_E None): the dense SwiGLU itself, batched over E.
        """
        if offsets_E is None:
            return swiglu(x, self.w_gate_EDF, self.w_up_EDF, self.w_down_EFD)  # (E,C,D) @ (E,D,F): bmm
        h_AF = F.silu(grouped_mm(x, self.w_gate_EDF, offsets_E)) * grouped_mm(x, self.w_up_EDF, offsets_E)
        return grouped_mm(h_AF, self.w_down_EFD, offsets_E)

    def tiered(self, x_RD: torch.Tensor, tiers: list) -> torch.Tensor:
        """Every expert on tiers of padded rows (dispatch.py's tiered layout; see TieredSwiGLU)."""
        return TieredSwiGLU.apply(x_RD, self.w_gate_EDF, self.w_up_EDF, self.w_down_EFD, tiers)

    def one(self, e: int, x_TD: torch.Tensor) -> torch.Tensor:
        """Expert e alone on x_TD (used by the reference loop and the soft-gating path)."""
        return swiglu(x_TD, self.w_gate_EDF[e], self.w_up_EDF[e], self.w_down_EFD[e])
