"""The fast dispatch equals the plain reference loop, forward and backward."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minimoe.dispatch import moe_forward, moe_forward_reference, soft_forward
from minimoe.experts import Experts
from minimoe.kernels import grouped_mm, grouped_mm_loop
from minimoe.router import route


def _grads(fn, x, w, experts):
    x = x.clone().requires_grad_(True)
    w = w.clone().requires_grad_(True)
    experts.zero_grad()
    y = fn(x, w)
    y.backward(torch.randn_like(y, generator=torch.Generator().manual_seed(1)))
    return y.detach(), x.grad, w.grad, [p.grad.clone() for p in experts.parameters()]


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 40), E=st.integers(1, 12), D=st.integers(1, 8), F=st.integers(1, 8), data=st.data())
def test_fast_dispatch_equals_reference_loop(T, E, D, F, data):
    K = data.draw(st.integers(1, E))
    torch.manual_seed(data.draw(st.integers(0, 1000)))
    experts = Experts(E, D, F)
    x = torch.randn(T, D)
    r = route(torch.randn(T, E), K)
    w = r.weights_TK.detach()
    fast = _grads(lambda x, w: moe_forward(x, r.ids_TK, w, experts), x, w, experts)
    ref = _grads(lambda x, w: moe_forward_reference(x, r.ids_TK, w, experts), x, w, experts)
    for a, b in zip(fast[:3], ref[:3]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(fast[3], ref[3]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "loop"])
def test_grouped_mm_backends_agree_with_empty_groups(backend):
    x = torch.randn(10, 8)  # dims divisible by 4: torch._grouped_mm's stride rule
    w = torch.randn(4, 8, 4)
    offsets = torch.tensor([3, 3, 10, 10])  # experts 1 and 3 get no rows
    torch.testing.assert_close(grouped_mm(x, w, offsets, backend=backend), grouped_mm_loop(x, w, offsets))


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
