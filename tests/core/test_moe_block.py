"""MoE-layer invariants from the definition of a mixture of experts."""

import torch

from minimoe.config import Config
from minimoe.model import MiniLM
from minimoe.moe_block import DenseFFN, MoEBlock


def _cfg(**moe):
    return Config().replace(model={"width": 8, "heads": 2, "vocab_size": 11, "context": 8}, moe=moe)


def test_one_expert_moe_equals_dense_ffn_with_the_same_weights():
    block = MoEBlock(_cfg(experts=1, top_k=1, expert_hidden=6))
    dense = DenseFFN(8, 6)
    with torch.no_grad():
        dense.w_gate_DF.copy_(block.experts.w_gate_EDF[0])
        dense.w_up_DF.copy_(block.experts.w_up_EDF[0])
        dense.w_down_FD.copy_(block.experts.w_down_EFD[0])
    x = torch.randn(20, 8)
    y, r = block(x)
    gap = (y - dense(x)).abs().max().item()
    assert gap < 1e-5, (f"one-expert MoE vs the dense FFN with its weights: outputs differ by up to {gap:.3g}; "
                        f"combine weights {r.weights_TK.min().item():.4g}..{r.weights_TK.max().item():.4g}")


def test_permuting_experts_with_router_rows_leaves_output_unchanged():
    for top_k, gating in [(1, "sparse"), (2, "sparse"), (1, "soft")]:
        block = MoEBlock(_cfg(experts=5, top_k=top_k, expert_hidden=4, shared=1, gating=gating))
        x = torch.randn(30, 8)
        y, _ = block(x)
        perm = torch.randperm(5)
        with torch.no_grad():
            block.router.weight.copy_(block.router.weight[perm])
            for p in block.experts.parameters():
                p.copy_(p[perm])
        y2, _ = block(x)
        torch.testing.assert_close(y, y2, rtol=1e-5, atol=1e-6)


def test_soft_gating_reports_its_top1_expert_and_weight():
    block = MoEBlock(_cfg(experts=4, gating="soft"))
    _, r = block(torch.randn(10, 8))
    torch.testing.assert_close(r.weights_TK, r.probs_TE.gather(-1, r.ids_TK))  # the top-1's probability
    assert r.weights_TK.shape == r.ids_TK.shape == (10, 1)


def test_a_model_names_its_moe_layers_by_block_index():
    model = MiniLM(Config().replace(model={"layers": 3, "moe_start_layer": 1, "vocab_size": 11, "heads": 2,
                                           "width": 8, "context": 8}))
    assert model.moe_layers == [1, 2]


def test_shared_expert_runs_on_every_token():
    block = MoEBlock(_cfg(experts=4, top_k=1, shared=2, expert_hidden=3))
    assert block.shared.w_gate_DF.shape == (8, 6)  # S * F wide
    x = torch.randn(10, 8)
    y, r = block(x)
    block.shared = None
    y0, _ = block(x)
    assert not torch.allclose(y, y0)
