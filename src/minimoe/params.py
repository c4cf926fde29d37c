"""Parameter accounting: P_total, P_active, and token budgets under two data contracts.

An MoE has two sizes (seed 002, "What are we holding fixed?"):

  P_total   every parameter the model stores
  P_active  the parameters one token can touch:

      P_active = P_dense + L_moe * (D*E + 3*D*F*K) + P_shared,   P_shared = L_moe * 3*D*F*S

  with D the width, E routed experts, K active experts, S shared experts, F an expert's hidden
  width (SwiGLU: three D*F matrices), L_moe the number of MoE layers, and P_dense everything
  outside the MoE layers' FFNs (embeddings, attention, norms, dense FFN layers, the head). The
  router (D*E per layer) is active in full: every token is scored against every expert. With
  soft gating every expert runs on every token, so K counts as E.

Two contracts fix the number of training tokens T from a model's size:

  totalDN   T = alpha * P_total    (tokens per stored parameter)
  activeDN  T = beta * P_active    (tokens per active parameter)

Both are reasonable; they answer different questions, and a dense-vs-MoE ranking can change
with the contract. `count_params` is tested equal to the real modules' numel().
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from .config import Config

CONTRACTS = ("totalDN", "activeDN")


@dataclass
class ParamCounts:
    embeddings: int  # token + position embeddings
    attention: int  # all blocks
    norms: int  # all RMSNorm weights
    dense_ffn: int  # FFNs of the dense (non-MoE) blocks
    head: int  # the output projection to the vocabulary
    router: int  # all MoE layers: D*E each
    routed_experts: int  # all MoE layers: 3*D*F*E each (stored)
    routed_active: int  # all MoE layers: 3*D*F*K each (touched by one token)
    shared_experts: int  # all MoE layers: 3*D*F*S each
    moe_layers: int

    @property
    def dense(self) -> int:
        """P_dense: everything outside the MoE layers' FFNs."""
        return self.embeddings + self.attention + self.norms + self.dense_ffn + self.head

    @property
    def total(self) -> int:
        return self.dense + self.router + self.routed_experts + self.shared_experts

    @property
    def active(self) -> int:
        return self.dense + self.router + self.routed_active + self.shared_experts

    def as_dict(self) -> dict:
        return {**asdict(self), "dense": self.dense, "total": self.total, "active": self.active}


def count_params(cfg: Config, vocab_size: int | None = None) -> ParamCounts:
    """P_total and P_active, and their split, from the config alone (no model is built)."""
    m, e = cfg.model, cfg.moe
    V = vocab_size if vocab_size is not None else m.vocab_size
    D, F = m.width, e.expert_hidden
    L_moe = m.layers - m.moe_start_layer
    L_dense = m.moe_start_layer
    k_active = e.experts if e.gating == "soft" else e.top_k
    dense_hidden = m.dense_hidden or cfg.matched_dense_hidden
    return ParamCounts(
        embeddings=V * D + m.context * D,
        attention=m.layers * 4 * D * D,
        norms=(2 * m.layers + 1) * D,
        dense_ffn=L_dense * 3 * D * dense_hidden,
        head=D * V,
        router=L_moe * D * e.experts,
        routed_experts=L_moe * 3 * D * F * e.experts,
        routed_active=L_moe * 3 * D * F * k_active,
        shared_experts=L_moe * 3 * D * F * e.shared,
        moe_layers=L_moe,
    )


def counted_params(model: nn.Module) -> int:
    """The real number of trainable parameters (what count_params must agree with)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def token_budget(counts: ParamCounts, contract: str, ratio: float) -> int:
    """Training tokens under a data contract: totalDN T = ratio * P_total, activeDN T = ratio * P_active."""
    if contract == "totalDN":
        return int(ratio * counts.total)
    if contract == "activeDN":
        return int(ratio * counts.active)
    raise ValueError(f"unknown data contract {contract!r}; choose one of {', '.join(CONTRACTS)}")


def matched_active_width(cfg: Config) -> int:
    """Active FFN width per token: (K + S) * F for the MoE; a fair dense model has this hidden width."""
    return cfg.matched_dense_hidden
