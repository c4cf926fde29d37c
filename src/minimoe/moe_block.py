"""The MoE layer: router + dispatch + routed experts + shared experts.

forward(x_TD), in four steps:
    1. the router scores every token against every expert and picks K of them (router.py);
    2. sparse/ste gating: tokens are sorted by expert and each expert runs on its own tokens
       (dispatch.py); soft gating: every expert runs on every token, blended by the softmax;
    3. the S shared experts (one SwiGLU of width S*F, the same parameters as S experts) run on
       every token and are added, as in DeepSeekMoE;
    4. the Routing record goes back with the output, for the aux loss and the telemetry.

It follows the shape of Hugging Face's MixtralSparseMoeBlock (a complete block in ~50 lines)
with the loop over experts replaced by a grouped matmul.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import Config
from .dispatch import moe_forward, soft_forward
from .experts import Experts, init_ffn_weights, swiglu
from .router import Router, Routing


class DenseFFN(nn.Module):
    """A dense SwiGLU FFN; with the same weights it equals a one-expert MoE."""

    def __init__(self, width: int, hidden: int, depth_scale: float = 1.0):
        super().__init__()
        w_gate, w_up, w_down = (w[0] for w in init_ffn_weights(1, width, hidden, depth_scale))
        self.w_gate_DF, self.w_up_DF, self.w_down_FD = nn.Parameter(w_gate), nn.Parameter(w_up), nn.Parameter(w_down)

    def forward(self, x_TD: torch.Tensor) -> torch.Tensor:
        return swiglu(x_TD, self.w_gate_DF, self.w_up_DF, self.w_down_FD)


class MoEBlock(nn.Module):
    def __init__(self, cfg: Config, depth_scale: float = 1.0):
        super().__init__()
        m, e = cfg.model, cfg.moe
        self.gating = e.gating
        self.router = Router(m.width, e.experts, e.top_k, e.gating, e.router_init_std, e.bias_update_rate)
        self.experts = Experts(e.experts, m.width, e.expert_hidden, depth_scale, e.expert_init)
        self.shared = DenseFFN(m.width, e.shared * e.expert_hidden, depth_scale) if e.shared else None

    def forward(self, x_TD: torch.Tensor) -> tuple[torch.Tensor, Routing]:
        r = self.router(x_TD)
        if self.gating == "soft":
            y_TD = soft_forward(x_TD, r.probs_TE, self.experts)
        else:
            y_TD = moe_forward(x_TD, r.ids_TK, r.weights_TK, self.experts)
        if self.shared is not None:
            y_TD = y_TD + self.shared(x_TD)
        return y_TD, r
