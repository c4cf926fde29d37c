"""The experts: E SwiGLU FFNs (Shazeer, 2020), ffn(x) = (silu(x @ W_gate) * (x @ W_up)) @ W_down,
stored stacked as (E, D, F) and (E, F, D) tensors, so that on rows sorted by expert one grouped
matmul runs every expert on its own rows, where a Python loop would launch E small matmuls.

`init="same"` starts every expert from one random draw. Averaging experts (phase 39) is only a
fair test when they started equal: independently drawn experts average to weights about
1/sqrt(E) smaller, which is damage from the init, not from what the experts learned.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


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
    """One SwiGLU FFN: x_TD with (D, F), (D, F), (F, D) weights (or a batch of them, with a leading axis)."""
    return (F.silu(x @ w_gate) * (x @ w_up)) @ w_down


def grouped_mm(x_AD: torch.Tensor, w_EDF: torch.Tensor, end_E: torch.Tensor) -> torch.Tensor:
    """y_AF[rows of e] = x_AD[rows of e] @ w_EDF[e], for rows sorted by expert; expert e's end before row end_E[e]."""
    aligned = all(d % (16 // x_AD.element_size()) == 0 for d in w_EDF.shape[1:])  # its rule: 16-byte aligned rows
    if hasattr(torch, "_grouped_mm") and x_AD.dtype in (torch.float32, torch.bfloat16) and aligned:
        return torch._grouped_mm(x_AD, w_EDF, offs=end_E.to(torch.int32))  # one matmul per expert, in C++
    return grouped_mm_loop(x_AD, w_EDF, end_E)


def grouped_mm_loop(x_AD: torch.Tensor, w_EDF: torch.Tensor, end_E: torch.Tensor) -> torch.Tensor:
    """The same as a loop over experts: the reference grouped_mm is tested against, and its fallback."""
    ends = end_E.tolist()
    parts = [x_AD[s:e] @ w_EDF[i] for i, (s, e) in enumerate(zip([0] + ends[:-1], ends))]
    return torch.cat(parts) if parts else x_AD.new_zeros(0, w_EDF.shape[-1])


class Experts(nn.Module):
    """E SwiGLU experts, stacked: w_gate_EDF, w_up_EDF, w_down_EFD."""

    def __init__(self, experts: int, width: int, hidden: int, depth_scale: float = 1.0, init: str = "independent"):
        super().__init__()
        w_gate, w_up, w_down = init_ffn_weights(experts, width, hidden, depth_scale, same=(init == "same"))
        self.w_gate_EDF = nn.Parameter(w_gate)
        self.w_up_EDF = nn.Parameter(w_up)
        self.w_down_EFD = nn.Parameter(w_down)

    @property
    def n(self) -> int:
        return self.w_gate_EDF.shape[0]

    def forward(self, x_AD: torch.Tensor, end_E: torch.Tensor) -> torch.Tensor:
        """Every expert on its own rows: x_AD sorted by expert, expert e's rows end before row end_E[e]."""
        h_AF = F.silu(grouped_mm(x_AD, self.w_gate_EDF, end_E)) * grouped_mm(x_AD, self.w_up_EDF, end_E)
        return grouped_mm(h_AF, self.w_down_EFD, end_E)
