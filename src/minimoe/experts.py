"""The experts: E SwiGLU feed-forward networks stored as stacked weights.

One expert is the same SwiGLU FFN a dense layer uses (Shazeer, 2020, "GLU Variants Improve
Transformer"):

    ffn(x) = (silu(x @ W_gate) * (x @ W_up)) @ W_down

Stacking the E experts' weights into (E, D, F) and (E, F, D) tensors lets every expert run at
once, instead of a Python loop over experts: grouped matmuls over tokens sorted by expert, or
the very same `swiglu` batched over a leading E axis when each expert's tokens are padded to a
common count (dispatch.py chooses). Autograd differentiates both; a hand-written backward that
saved fewer tensors was measured slower (it recomputes silu(g) * u), so there is none.

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

    def one(self, e: int, x_TD: torch.Tensor) -> torch.Tensor:
        """Expert e alone on x_TD (used by the reference loop and the soft-gating path)."""
        return swiglu(x_TD, self.w_gate_EDF[e], self.w_up_EDF[e], self.w_down_EFD[e])
