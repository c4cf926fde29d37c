"""Parameter accounting: P_total, P_active, and token budgets under two data contracts.

An MoE has two sizes (source note 002, "What are we holding fixed?"):

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

`just params [moe-train flags]` prints the split for any config, checks it against the
parameters of the model that those flags build, and gives the token budgets under both contracts.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict, dataclass

from torch import nn

from .config import Config, ConfigError, config_file_in, config_from_args
from .config import build_parser as config_parser
from .data import DataError, load_dataset
from .model import MiniLM

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
        """P_active: what one token touches. The router scores the token against all E experts, so
        all of it is active; of the routed experts only the K it visits; the S shared experts always."""
        routing = self.router + self.routed_active  # all E scores, then the K chosen experts
        return self.dense + routing + self.shared_experts  # shared experts run on every token

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


def counted_active(model: nn.Module) -> int:
    """Active parameters counted from the modules: every parameter, minus the routed experts a token skips."""
    n = counted_params(model)
    for block in model.moe_blocks:
        E = block.experts.n
        k = E if block.gating == "soft" else block.router.top_k
        per_expert = sum(p.numel() for p in block.experts.parameters()) // E
        n -= (E - k) * per_expert
    return n


def token_budget(counts: ParamCounts, contract: str, ratio: float) -> int:
    """Training tokens under a data contract: totalDN T = ratio * P_total, activeDN T = ratio * P_active.
    (For a dense model the two agree; for an MoE the contract decides how long it trains.)"""
    if contract == "totalDN":
        return round(ratio * counts.total)  # tokens per stored parameter
    if contract == "activeDN":
        return round(ratio * counts.active)  # tokens per active parameter
    raise ValueError(f"unknown data contract {contract!r}; choose one of {', '.join(CONTRACTS)}")


def steps_for(tokens: int, cfg: Config) -> int:
    """Optimiser steps that consume `tokens` training tokens at batch * context tokens per step."""
    return max(1, math.ceil(tokens / (cfg.train.batch * cfg.model.context)))


# ---------------------------------------------------------------- command line

PARTS = (("embeddings", "token + position embeddings"), ("attention", "q, k, v and output projections"),
         ("norms", "RMSNorm weights"), ("dense_ffn", "FFNs of the dense blocks"),
         ("router", "D*E per MoE layer; all active"), ("routed", "3*D*F per expert; K of E active"),
         ("shared_experts", "3*D*F*S per MoE layer; all active"), ("head", "output projection"))


def table(pc: ParamCounts) -> str:
    """The split of P_total and P_active, one row per part."""
    rows = [f"{'part':<16} {'stored':>12} {'active':>12}  note"]
    for name, note in PARTS:
        if name == "routed":
            stored, active, label = pc.routed_experts, pc.routed_active, "routed experts"
        else:
            stored = active = getattr(pc, name)
            label = name.replace("_", " ")
        rows.append(f"{label:<16} {stored:>12,} {active:>12,}  {note}")
    rows.append(f"{'P_total':<16} {pc.total:>12,}")
    rows.append(f"{'P_active':<16} {'':>12} {pc.active:>12,}  "
                f"{pc.active / pc.total:.1%} of P_total")
    return "\n".join(rows)


def build_parser(defaults: Config | None = None) -> argparse.ArgumentParser:
    p = config_parser("params", "P_total and P_active of the model that the same flags as moe-train build, "
                      "and its token budgets under the totalDN and activeDN contracts.", defaults)
    g = p.add_argument_group("contracts")
    g.add_argument("--alpha", type=float, default=20.0, help="totalDN: training tokens per stored parameter")
    g.add_argument("--beta", type=float, default=20.0, help="activeDN: training tokens per active parameter")
    g.add_argument("--vocab-size", type=int, default=0,
                   help="V; 0 = the vocabulary of the training text (--data, or the built-in corpus)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(config_file_in(argv)).parse_args(argv)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    extra = {k: vars(args).pop(k) for k in ("alpha", "beta", "vocab_size")}
    try:
        if extra["vocab_size"] < 0 or extra["alpha"] <= 0 or extra["beta"] <= 0:
            raise ConfigError("--alpha and --beta must be > 0 and --vocab-size >= 0")
        cfg = config_from_args(args)
        V = extra["vocab_size"] or load_dataset(cfg.train.data, cfg.model.context).vocab_size
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cfg = cfg.replace(model={"vocab_size": V})
    m, e = cfg.model, cfg.moe
    pc = count_params(cfg)
    moe = pc.moe_layers > 0
    print(f"model: D={m.width} layers={m.layers} (MoE layers: {pc.moe_layers}) V={V} context={m.context}"
          + (f"  E={e.experts} K={e.top_k} S={e.shared} F={e.expert_hidden} gating={e.gating}" if moe else
             f"  dense FFN hidden={m.dense_hidden or cfg.matched_dense_hidden}"))
    print(table(pc))
    model = MiniLM(cfg)
    n_total, n_active = counted_params(model), counted_active(model)
    ok = n_total == pc.total and n_active == pc.active
    print(f"counted from the modules: P_total={n_total:,}  P_active={n_active:,}  "
          f"({'matches the formula' if ok else 'DIFFERS from the formula'})")
    if moe:
        print(f"active FFN width per token: (K + S) * F = ({e.top_k} + {e.shared}) * {e.expert_hidden} = "
              f"{cfg.matched_dense_hidden}; the dense model of matched width: "
              f"--moe-start-layer {m.layers} --dense-hidden {cfg.matched_dense_hidden}")
    tok = cfg.train.batch * m.context
    print(f"token budgets at {tok} tokens per step (--batch {cfg.train.batch} x --context {m.context}):")
    for contract, ratio, size in (("totalDN", extra["alpha"], "P_total"), ("activeDN", extra["beta"], "P_active")):
        T = token_budget(pc, contract, ratio)
        print(f"  {contract:<8} T = {ratio:g} * {size:<8} = {T:>13,} tokens = {steps_for(T, cfg):>7,} steps")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
