"""The fast dispatch equals the plain reference loop, forward and backward, in all three row layouts."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minimoe import dispatch
from minimoe.dispatch import choose_layout, moe_forward, moe_forward_reference, plan_tiers, soft_forward
from minimoe.experts import Experts
from minimoe.kernels import grouped_mm, grouped_mm_loop
from minimoe.router import Router, route


def _grads(fn, x, w, experts):
    x = x.clone().requires_grad_(True)
    w = w.clone().requires_grad_(True)
    experts.zero_grad()
    y = fn(x, w)
    y.backward(torch.randn_like(y, generator=torch.Generator().manual_seed(1)))
    return y.detach(), x.grad, w.grad, [p.grad.clone() for p in experts.parameters()]


def _assert_same(fast, ref):
    for a, b in zip(fast[:3], ref[:3]):  # output, d x, d combine weights
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(fast[3], ref[3]):  # d w_gate, d w_up, d w_down
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 40), E=st.integers(1, 12), D=st.sampled_from([1, 3, 4, 8]), F=st.sampled_from([1, 4, 5, 8]),
       layout=st.sampled_from(["ragged", "padded", "tiered", None]), data=st.data())
def test_fast_dispatch_equals_reference_loop(T, E, D, F, layout, data):
    """Any routing, including experts with no tokens; D, F % 4 == 0 runs torch._grouped_mm, else the loop."""
    K = data.draw(st.integers(1, E))
    torch.manual_seed(data.draw(st.integers(0, 1000)))
    experts = Experts(E, D, F)
    x = torch.randn(T, D)
    r = route(torch.randn(T, E) * data.draw(st.sampled_from([1.0, 10.0])), K)  # x10: uneven loads
    w = r.weights_TK.detach()
    fast = _grads(lambda x, w: moe_forward(x, r.ids_TK, w, experts, layout=layout), x, w, experts)
    ref = _grads(lambda x, w: moe_forward_reference(x, r.ids_TK, w, experts), x, w, experts)
    _assert_same(fast, ref)


@pytest.mark.parametrize("layout", ["ragged", "padded", "tiered"])
def test_collapsed_routing_every_token_to_one_expert(layout):
    experts = Experts(6, 8, 4)
    x = torch.randn(30, 8)
    ids = torch.full((30, 2), 3)
    ids[:, 1] = 5  # K = 2: experts 3 and 5 get every token, the other four none
    w = torch.rand(30, 2)
    fast = _grads(lambda x, w: moe_forward(x, ids, w, experts, layout=layout), x, w, experts)
    ref = _grads(lambda x, w: moe_forward_reference(x, ids, w, experts), x, w, experts)
    _assert_same(fast, ref)
    assert fast[3][0][[0, 1, 2, 4]].abs().sum() == 0  # experts without tokens get zero gradient


def _free_tiers(monkeypatch):
    """Make tiers cost nothing but their rows: the plan then cuts many tiers, none holding all experts."""
    for name in ("PASS_ROWS", "GATHER_ROWS", "ZERO_ROWS", "TIER_ROWS"):
        monkeypatch.setattr(dispatch, name, 0)


@settings(max_examples=15, deadline=None)
@given(T=st.integers(1, 60), E=st.integers(2, 12), data=st.data())
def test_many_gathered_tiers_equal_reference_loop(T, E, data):
    with pytest.MonkeyPatch.context() as mp:
        _free_tiers(mp)
        K = data.draw(st.integers(1, E))
        torch.manual_seed(data.draw(st.integers(0, 1000)))
        experts = Experts(E, 4, 8)
        x = torch.randn(T, 4)
        r = route(torch.randn(T, E) * 10.0, K)
        w = r.weights_TK.detach()
        fast = _grads(lambda x, w: moe_forward(x, r.ids_TK, w, experts, layout="tiered"), x, w, experts)
        ref = _grads(lambda x, w: moe_forward_reference(x, r.ids_TK, w, experts), x, w, experts)
        _assert_same(fast, ref)


@settings(max_examples=50, deadline=None)
@given(counts=st.lists(st.integers(0, 300), min_size=1, max_size=40), free=st.booleans())
def test_tiers_cover_every_rank_of_every_expert_once(counts, free):
    count_E = torch.tensor(counts)
    C = max(counts)
    with pytest.MonkeyPatch.context() as mp:
        if free:
            _free_tiers(mp)
        _, tiers = plan_tiers(count_E, C)
    if C == 0:
        return
    assert tiers[0][0] == 0 and tiers[-1][1] == C
    assert all(a[1] == b[0] for a, b in zip(tiers, tiers[1:]))  # contiguous, in order
    assert all(not every for _, _, every in tiers[1:])  # only the first tier may hold all experts
    expert_A = torch.repeat_interleave(torch.arange(len(counts)), count_E)
    rank_A = torch.arange(len(expert_A)) - (count_E.cumsum(0) - count_E)[expert_A]
    row_A, R, _ = dispatch._tier_rows(count_E, expert_A, rank_A, tiers)
    assert len(row_A.unique()) == len(row_A) and int(row_A.max()) < R  # one row each, inside the tiers


def test_layout_choice_follows_the_costs():
    x = torch.empty(0)
    even = torch.full((64,), 448)
    assert choose_layout(even, 64 * 448, 448, x)[0] == "padded"  # equal loads: no padding at all
    uneven = torch.tensor([3000, 500] + [100] * 6)
    assert choose_layout(uneven, 4096, 3000, x)[0] == "ragged"  # few experts, many rows each, uneven
    few = torch.randint(0, 14, (4096,))
    few[7] = 200
    layout, tiers = choose_layout(few, int(few.sum()), 200, x)  # thousands of experts, a handful of rows
    assert layout == "tiered" and tiers[0][2] and tiers[-1][1] == 200  # all experts first, then the busy ones
    collapse = torch.zeros(4096, dtype=torch.long)
    collapse[[3, 9]] = 4096
    layout, tiers = choose_layout(collapse, 8192, 4096, x)  # collapse: padding would be E x T rows
    assert layout == "tiered" and not tiers[0][2]  # only the two busy experts get rows


def test_tiers_are_taken_when_priced_a_little_cheaper():
    """The benchmark's E = 512, K = 7 routing (T = 4096, a fresh router): tiers priced at 0.8-1x of
    ragged, and taken (they ran 1.6x faster there); phase 37's small experts never take them."""
    torch.manual_seed(0)
    x = torch.randn(4096, 64)
    ids = Router(64, 512, 7, init_std=0.01)(x).ids_TK
    count_E = torch.bincount(ids.reshape(-1), minlength=512)
    C, A = int(count_E.max()), ids.numel()
    ragged = dispatch.flat_costs(512, A, C)[1]
    assert 0.8 < plan_tiers(count_E, C)[0] / ragged < 1
    assert choose_layout(count_E, A, C, x, experts_size=64 * 128)[0] == "tiered"
    assert choose_layout(count_E, A, C, x, experts_size=32 * 8)[0] != "tiered"  # phase 37: D*F = 256


@pytest.mark.parametrize("backend", ["torch", "loop"])
def test_grouped_mm_backends_agree_with_empty_groups_forward_and_backward(backend):
    x = torch.randn(10, 8, requires_grad=True)  # dims divisible by 4: torch._grouped_mm's stride rule
    w = torch.randn(4, 8, 4, requires_grad=True)
    offsets = torch.tensor([3, 3, 10, 10])  # experts 1 and 3 get no rows
    dy = torch.randn(10, 4)
    got = torch.autograd.grad(grouped_mm(x, w, offsets, backend=backend), (x, w), dy)
    want = torch.autograd.grad(grouped_mm_loop(x, w, offsets), (x, w), dy)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    assert got[1][1].abs().sum() == 0 and got[1][3].abs().sum() == 0  # no rows: zero weight gradient


def test_unknown_backend_says_which_exist(monkeypatch):
    monkeypatch.setenv("MINIMOE_GROUPED_MM", "cuBLAS")
    with pytest.raises(ValueError, match="torch, triton, loop"):
        grouped_mm(torch.randn(2, 4), torch.randn(1, 4, 4), torch.tensor([2]))


def test_soft_forward_is_probability_weighted_sum_of_all_experts():
    experts = Experts(3, 4, 5)
    x = torch.randn(7, 4)
    p = torch.randn(7, 3).softmax(-1)
    want = sum(p[:, e : e + 1] * experts.one(e, x) for e in range(3))
    torch.testing.assert_close(soft_forward(x, p, experts), want, rtol=1e-4, atol=1e-5)


def test_soft_forward_equals_dispatch_with_all_experts():
    experts = Experts(4, 6, 5)
    x = torch.randn(9, 6)
    p = torch.randn(9, 4).softmax(-1)
    ids = torch.arange(4).expand(9, 4)
    torch.testing.assert_close(soft_forward(x, p, experts), moe_forward(x, ids, p, experts), rtol=1e-4, atol=1e-5)
