"""Router invariants: what top-k routing must guarantee, whatever the scores."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minimoe.router import Router, route


@settings(max_examples=40, deadline=None, derandomize=True)
@given(T=st.integers(1, 64), E=st.integers(2, 32), data=st.data())
def test_topk_weights_sum_to_one_per_token(T, E, data):
    K = data.draw(st.integers(2, E))
    logits = torch.randn(T, E) * data.draw(st.floats(0.01, 10))
    w = route(logits, K).weights_TK
    sums = w.sum(-1)
    assert torch.allclose(sums, torch.ones(T), atol=1e-5) and (w >= 0).all() and (w <= 1).all(), (
        f"T={T} E={E} K={K}: a token's K weights add up to {sums.min().item():.4g}..{sums.max().item():.4g}; "
        f"weights range {w.min().item():.4g}..{w.max().item():.4g}")


def test_each_token_gets_k_distinct_experts():
    r = route(torch.randn(100, 8), 3)
    assert all(len(set(row.tolist())) == 3 for row in r.ids_TK)


def test_softmax_runs_in_fp32_even_for_bf16_scores():
    r = route(torch.randn(10, 8).bfloat16(), 2)
    assert r.probs_TE.dtype == torch.float32


def test_ste_top1_weight_is_one_and_passes_a_gradient():
    logits = torch.randn(16, 4, requires_grad=True)
    r = route(logits, 1, gating="ste")
    (r.weights_TK * torch.randn(16, 1)).sum().backward()
    grad = logits.grad.abs().sum().item()
    assert torch.equal(r.weights_TK, torch.ones(16, 1)) and grad > 0, (
        f"straight-through top-1: forward weights {r.weights_TK.min().item():.4g}..{r.weights_TK.max().item():.4g}, "
        f"gradient reaching the 16 x 4 scores: sum of |g| = {grad:.3g}")


def test_soft_gating_loads_add_up_to_the_tokens():
    r = route(torch.randn(50, 4), 1, gating="soft")
    assert abs(r.load_E.sum().item() - 50) < 1e-4, (
        f"soft gating over 50 tokens: the experts' gate masses {[round(v, 2) for v in r.load_E.tolist()]} "
        f"add up to {r.load_E.sum().item():.4g}")


def test_a_selection_bias_moves_the_picks_not_the_weights():
    logits = torch.randn(200, 4)
    plain = route(logits, 1)
    biased = route(logits, 1, bias_E=torch.tensor([10.0, 0, 0, 0]))
    assert (biased.ids_TK == 0).all()
    same = plain.ids_TK[:, 0] == 0  # tokens that picked expert 0 anyway
    torch.testing.assert_close(biased.weights_TK[same], plain.weights_TK[same])


def test_bias_update_is_off_at_rate_zero():
    router = Router(8, 4, 1, bias_update_rate=0.0)
    router.update_bias(torch.tensor([100.0, 0, 0, 0]))
    assert (router.bias_E == 0).all()
