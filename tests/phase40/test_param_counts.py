"""Break 40-01 and 40-03's detector: is P_active what one token really touches in the built model?

P_active is counted here from the modules themselves, not from a formula: every trainable
parameter, minus the routed experts a token does not visit (E - K of them per MoE layer). The
router and the shared experts stay in: every token is scored by the whole router and passes
through every shared expert.
"""

import torch

from minimoe.experiments.fair import audit_shape, model_configs
from minimoe.model import MiniLM
from minimoe.params import count_params


def counted(model: MiniLM) -> dict[str, int]:
    """P_total and P_active counted from the modules, keyed by the contract that uses each."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    skipped = 0
    for block in model.moe_blocks:
        E, K = block.experts.n, block.router.top_k
        per_expert = sum(p.numel() for p in block.experts.parameters()) // E
        skipped += (E - K) * per_expert
    return {"totalDN": total, "activeDN": total - skipped}


def test_p_active_matches_the_modules(lab_base, seed):
    torch.manual_seed(seed)
    lab_models = model_configs(lab_base, [16, 64])
    for cfg in (audit_shape(lab_base, seed), *lab_models.values()):
        pc = count_params(cfg)
        n = counted(MiniLM(cfg))
        m, e = cfg.model, cfg.moe
        shape = f"D={m.width} layers={m.layers} moe_start={m.moe_start_layer} E={e.experts} K={e.top_k} S={e.shared}"
        assert pc.total == n["totalDN"], f"{shape}: P_total formula {pc.total:,} but the modules hold {n['totalDN']:,}"
        assert pc.active == n["activeDN"], (
            f"{shape}: P_active formula {pc.active:,} but one token touches {n['activeDN']:,} parameters of the "
            f"built model (missing {n['activeDN'] - pc.active:,}); the formula's parts: router={pc.router:,} "
            f"routed_active={pc.routed_active:,} shared_experts={pc.shared_experts:,} dense={pc.dense:,}")
