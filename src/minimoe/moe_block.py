"""The MoE layer: route each token to K of E experts, run every expert on its own tokens, and add up
each token's K expert outputs, weighted by the router (a sparse MoE block, as in Mixtral).

    1. route         the router scores every token against every expert and picks K (router.py)
    2. sort          the A = T*K (token, expert) assignments by expert: each expert's rows contiguous
    3. experts       one grouped matmul per weight runs every expert on its own rows (experts.py)
    4. weighted sum  y_TD[t] = sum over k of weights_TK[t, k] * (expert ids_TK[t, k] on x_TD[t])
    5. shared        + the S shared experts (one SwiGLU of width S*F) on every token, as in DeepSeekMoE

`moe_forward` does 2-4 with no Python loop; `moe_forward_reference` beside it is the plain loop of
Hugging Face's MixtralSparseMoeBlock, and tests prove the two equal, forward and backward. Soft
gating makes no routing decision: every expert runs on every token, blended by the probabilities.
`--experts-impl` runs 2-4 another way, for speed only: minimoe/perf/, which a learner need not read.

With a capacity factor C > 0 each expert takes at most ceil(C * T*K / E) assignments per batch and the
rest are dropped: capacity.py (phase 41). C = 0 (the default) is dropless and takes the path above.
"""

from __future__ import annotations

import torch
from torch import nn

from .capacity import expert_capacity, keep_within_capacity, moe_forward_dropping
from .config import Config
from .experts import Experts, init_ffn_weights, swiglu
from .router import Router, Routing


def moe_forward(x_TD: torch.Tensor, ids_TK: torch.Tensor, weights_TK: torch.Tensor, experts: Experts) -> torch.Tensor:
    """Steps 2-4: y_TD[t] = sum_k weights_TK[t, k] * expert_{ids_TK[t, k]}(x_TD[t])."""
    T, K = ids_TK.shape
    expert_A, order_A = ids_TK.reshape(-1).sort(stable=True)  # 2. assignment a is (t, k) = divmod(order_A[a], K)
    end_E = torch.bincount(expert_A, minlength=experts.n).cumsum(0)  # expert e's rows end before row end_E[e]
    y_AD = experts(x_TD.index_select(0, order_A // K), end_E)  # 3. row a: its token through its expert
    row_TK = torch.empty_like(order_A)
    row_TK[order_A] = torch.arange(T * K, device=x_TD.device)  # the row that holds (t, k)'s output
    y_TKD = y_AD.index_select(0, row_TK).view(T, K, -1)
    return (y_TKD * weights_TK.unsqueeze(-1).to(y_TKD.dtype)).sum(dim=1)  # 4.


def moe_forward_reference(x_TD: torch.Tensor, ids_TK: torch.Tensor, weights_TK: torch.Tensor,
                          experts: Experts) -> torch.Tensor:
    """The same as a plain loop over experts: slow, and the reference every other way is tested against."""
    y_TD = torch.zeros_like(x_TD)
    for e in range(experts.n):
        token_N, slot_N = (ids_TK == e).nonzero(as_tuple=True)  # the N tokens that chose expert e, and in which slot
        if len(token_N):
            y_ND = swiglu(x_TD[token_N], experts.w_gate_EDF[e], experts.w_up_EDF[e], experts.w_down_EFD[e])
            y_TD = y_TD.index_add(0, token_N, y_ND * weights_TK[token_N, slot_N].unsqueeze(-1).to(x_TD.dtype))
    return y_TD


def soft_forward(x_TD: torch.Tensor, probs_TE: torch.Tensor, experts: Experts) -> torch.Tensor:
    """Soft gating: y_TD[t] = sum_e probs_TE[t, e] * expert_e(x_TD[t]), every expert on every token."""
    x_ETD = x_TD.unsqueeze(0).expand(experts.n, -1, -1)
    y_ETD = swiglu(x_ETD, experts.w_gate_EDF, experts.w_up_EDF, experts.w_down_EFD)  # batched over the E experts
    return torch.einsum("te,etd->td", probs_TE.to(x_TD.dtype), y_ETD)


class DenseFFN(nn.Module):
    """A dense SwiGLU FFN; with the same weights it equals a one-expert MoE."""

    def __init__(self, width: int, hidden: int, depth_scale: float = 1.0):
        super().__init__()
        w_gate, w_up, w_down = (w[0] for w in init_ffn_weights(1, width, hidden, depth_scale))
        self.w_gate_DF, self.w_up_DF, self.w_down_FD = nn.Parameter(w_gate), nn.Parameter(w_up), nn.Parameter(w_down)

    def forward(self, x_TD: torch.Tensor) -> torch.Tensor:
        return swiglu(x_TD, self.w_gate_DF, self.w_up_DF, self.w_down_FD)


class MoEBlock(nn.Module):
    """Router + E routed experts + S shared experts. experts_forward does steps 2-4: moe_forward, unless
    the model was built with another --experts-impl (minimoe/perf/)."""

    def __init__(self, cfg: Config, depth_scale: float = 1.0, experts_forward=moe_forward):
        super().__init__()
        m, e = cfg.model, cfg.moe
        self.gating = e.gating
        self.router = Router(m.width, e.experts, e.top_k, e.gating, e.router_init_std, e.bias_update_rate)
        self.experts = Experts(e.experts, m.width, e.expert_hidden, depth_scale, e.expert_init)
        self.shared = DenseFFN(m.width, e.shared * e.expert_hidden, depth_scale) if e.shared else None
        self.experts_forward = experts_forward
        self.capacity_factor, self.drop_policy = e.capacity_factor, e.drop_policy

    def forward(self, x_TD: torch.Tensor) -> tuple[torch.Tensor, Routing]:
        r = self.router(x_TD)  # 1.
        if self.gating == "soft":
            y_TD = soft_forward(x_TD, r.probs_TE, self.experts)
        elif self.capacity_factor > 0:  # 2-4 with at most r.capacity assignments per expert
            r.capacity = expert_capacity(len(x_TD), r.ids_TK.shape[1], self.experts.n, self.capacity_factor)
            r.kept_TK = keep_within_capacity(r.ids_TK, r.probs_TE.detach(), r.capacity, self.drop_policy)
            y_TD = moe_forward_dropping(x_TD, r.ids_TK, r.weights_TK, r.kept_TK, self.experts)
        else:
            y_TD = self.experts_forward(x_TD, r.ids_TK, r.weights_TK, self.experts)  # 2-4.
        if self.shared is not None:
            y_TD = y_TD + self.shared(x_TD)  # 5.
        return y_TD, r
