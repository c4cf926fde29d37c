"""Is P_active what one token really touches in the built model?

P_active is counted here from the modules themselves, not from a formula: every trainable
parameter, minus the routed experts a token does not visit (E - K of them per MoE layer). Checked
on the seed's audit shape (the row `just experiment fair --audit` prints for it: active_gap is the
formula's P_active minus the counted one) and on the lab's two MoEs.
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


def test_p_active_matches_the_modules(lab_base, seed, observe):
    torch.manual_seed(seed)
    rows = []
    for cfg in (audit_shape(lab_base, seed), *model_configs(lab_base, [16, 64]).values()):
        pc, n = count_params(cfg), counted(MiniLM(cfg))
        m, e = cfg.model, cfg.moe
        shape = f"D={m.width} layers={m.layers} moe_start={m.moe_start_layer} E={e.experts} K={e.top_k} S={e.shared}"
        rows.append((pc.total - n["totalDN"], pc.active - n["activeDN"], shape, pc, n))
    observe("active_gap", rows[0][1])
    worst = max(rows, key=lambda r: (abs(r[0]), abs(r[1])))
    observe("abs_gap", max(abs(worst[0]), abs(worst[1])), 0.0, "<=")
    total_gap, active_gap, shape, pc, n = worst
    assert total_gap == 0 and active_gap == 0, (
        f"{shape}: the formula gives P_total {pc.total:,} and P_active {pc.active:,}; the built model holds "
        f"{n['totalDN']:,} parameters and one token touches {n['activeDN']:,}")
