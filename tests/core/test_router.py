"""Router invariants: what top-k routing must guarantee, whatever the scores."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minimoe.router import Router, route


@settings(max_examples=40, deadline=None)
@given(T=st.integers(1, 64), E=st.integers(2, 32), data=st.data())
def test_topk_weights_sum_to_one_per_token(T, E, data):
    K = data.draw(st.integers(2, E))
    logits = torch.randn(T, E) * data.draw(st.floats(0.01, 10))
    r = route(logits, K)
    torch.testing.assert_close(r.weights_TK.sum(-1), torch.ones(T))
    assert (r.weights_TK >= 0).all() and (r.weights_TK <= 1).all()


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 64), E=st.integers(1, 32))
def test_top1_weight_is_the_softmax_probability(T, E):
    logits = torch.randn(T, E)
    r = route(logits, 1)
    torch.testing.assert_close(r.weights_TK[:, 0], logits.softmax(-1).max(-1).values)


def test_each_token_gets_k_distinct_experts():
    r = route(torch.randn(100, 8), 3)
    assert all(len(set(row.tolist())) == 3 for row in r.ids_TK)
    assert r.load_E.sum() == 300


def test_softmax_runs_in_fp32_even_for_bf16_scores():
    r = route(torch.randn(10, 8).bfloat16(), 2)
    assert r.probs_TE.dtype == torch.float32


def test_ste_forward_weight_is_one_but_gradient_flows():
    logits = torch.randn(16, 4, requires_grad=True)
    r = route(logits, 1, gating="ste")
    torch.testing.assert_close(r.weights_TK, torch.ones(16, 1))
    (r.weights_TK * torch.randn(16, 1)).sum().backward()
    assert logits.grad.abs().sum() > 0


def test_soft_gating_load_is_gate_mass():
    r = route(torch.randn(50, 4), 1, gating="soft")
    torch.testing.assert_close(r.load_E.sum(), torch.tensor(50.0))


def test_bias_changes_selection_but_not_weights():
    logits = torch.randn(200, 4)
    bias = torch.tensor([10.0, 0, 0, 0])
    r = route(logits, 1, bias_E=bias)
    assert (r.ids_TK == 0).all()
    torch.testing.assert_close(r.weights_TK[:, 0], logits.softmax(-1)[:, 0])


def test_bias_update_raises_underloaded_and_lowers_overloaded_experts():
    router = Router(8, 4, 1, bias_update_rate=0.1)
    router.update_bias(torch.tensor([100.0, 10, 10, 0]))
    torch.testing.assert_close(router.bias_E, torch.tensor([-0.1, 0.1, 0.1, 0.1]))


def test_bias_update_is_off_at_rate_zero():
    router = Router(8, 4, 1, bias_update_rate=0.0)
    router.update_bias(torch.tensor([100.0, 0, 0, 0]))
    assert (router.bias_E == 0).all()
