"""The experts on tiers of padded rows (layouts.py's tiered layout), with the backward written out.

Tier t is a batch of n_t experts with c_t rows each, run as batched matmuls (torch.bmm). The first
tier may hold all E experts, whose weights are then used in place; the others hold only the busier
experts, whose weights are gathered. Autograd would give every gathered tier a full-size (E, D, F)
zero gradient to add into; here the first tier's batched matmul writes the weight gradient and the
gathered tiers add into their experts' rows of it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..experts import Experts


def bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torch.bmm into a fresh output. On CPU, bmm(a, b) with a transposed `a` of few columns
    (the weight gradient x^T @ dh of a few rows per expert) took 50-300 ms at E=4096 where the same
    call with out= took 10 ms (torch 2.13, 2 cores), so the output is always passed."""
    return torch.bmm(a, b, out=a.new_empty(a.shape[0], a.shape[1], b.shape[2]))


class TieredSwiGLU(torch.autograd.Function):
    """SwiGLU experts on tiers of padded rows. `tiers` lists (ids, n, c): ids None means all E experts in
    order, else the n experts `ids`. x_RD holds the tiers one after another, n*c rows each."""

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


def tiered_swiglu(x_RD: torch.Tensor, experts: Experts, tiers: list) -> torch.Tensor:
    """Every expert on its tiers of padded rows (see TieredSwiGLU)."""
    return TieredSwiGLU.apply(x_RD, experts.w_gate_EDF, experts.w_up_EDF, experts.w_down_EFD, tiers)
