"""Every way of running the experts (--experts-impl) equals the plain reference loop, forward and backward."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minimoe.config import EXPERTS_IMPLS, Config, ConfigError
from minimoe.experts import Experts, grouped_mm, grouped_mm_loop
from minimoe.model import MiniLM
from minimoe.moe_block import moe_forward, moe_forward_reference, soft_forward
from minimoe.perf import FORWARDS, implementation
from minimoe.router import route


def _grads(fn, x, w, experts):
    x = x.clone().requires_grad_(True)
    w = w.clone().requires_grad_(True)
    experts.zero_grad()
    y = fn(x, w)
    y.backward(torch.randn_like(y, generator=torch.Generator().manual_seed(1)))
    return y.detach(), x.grad, w.grad, [p.grad.clone() for p in experts.parameters()]


def assert_same(fast, ref):
    for a, b in zip(fast[:3], ref[:3]):  # output, d x, d combine weights
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(fast[3], ref[3]):  # d w_gate, d w_up, d w_down
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def same_as_reference(forward, x, ids, w, experts):
    fast = _grads(lambda x, w: forward(x, ids, w, experts), x, w, experts)
    ref = _grads(lambda x, w: moe_forward_reference(x, ids, w, experts), x, w, experts)
    assert_same(fast, ref)
    return fast


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 40), E=st.integers(1, 12), D=st.sampled_from([1, 3, 4, 8]), F=st.sampled_from([1, 4, 5, 8]),
       impl=st.sampled_from(sorted(FORWARDS)), data=st.data())
def test_every_experts_impl_equals_the_reference_loop(T, E, D, F, impl, data):
    """Any routing, including experts with no tokens; D, F % 4 == 0 runs torch._grouped_mm, else its loop."""
    K = data.draw(st.integers(1, E))
    torch.manual_seed(data.draw(st.integers(0, 1000)))
    experts = Experts(E, D, F)
    r = route(torch.randn(T, E) * data.draw(st.sampled_from([1.0, 10.0])), K)  # x10: uneven loads
    same_as_reference(implementation(impl), torch.randn(T, D), r.ids_TK, r.weights_TK.detach(), experts)


@pytest.mark.parametrize("impl", sorted(FORWARDS))
def test_collapsed_routing_every_token_to_one_expert(impl):
    experts = Experts(6, 8, 4)
    ids = torch.full((30, 2), 3)
    ids[:, 1] = 5  # K = 2: experts 3 and 5 get every token, the other four none
    fast = same_as_reference(implementation(impl), torch.randn(30, 8), ids, torch.rand(30, 2), experts)
    assert fast[3][0][[0, 1, 2, 4]].abs().sum() == 0  # experts without tokens get zero gradient


@pytest.mark.parametrize("impl", EXPERTS_IMPLS)
def test_a_model_built_with_each_impl_gives_the_same_loss(impl, corpus):
    if impl == "triton":
        pytest.importorskip("triton", reason="triton is not installed (pip install -e '.[triton]')")
        pytest.skip("the Triton kernel runs on a GPU, or on the CPU only in tests/core/test_kernels.py's interpreter")
    cfg = Config().replace(model={"width": 8, "heads": 2, "context": 8, "vocab_size": corpus.vocab_size},
                           moe={"experts": 5, "top_k": 2, "expert_hidden": 4, "experts_impl": impl})
    x = corpus.train_ids[:32].view(4, 8)
    torch.manual_seed(0)
    loss = MiniLM(cfg)(x)[0].sum()
    torch.manual_seed(0)
    want = MiniLM(cfg.replace(moe={"experts_impl": "loop"}))(x)[0].sum()
    torch.testing.assert_close(loss, want, rtol=1e-5, atol=1e-4)


def test_an_unknown_impl_is_refused_naming_the_choices():
    with pytest.raises(ConfigError, match="--experts-impl 'fast'.*grouped"):
        Config().replace(moe={"experts_impl": "fast"})
    with pytest.raises(ConfigError, match="grouped"):
        implementation("fast")


@pytest.mark.parametrize("use_torch", [True, False])
def test_grouped_mm_equals_its_loop_with_empty_groups_forward_and_backward(use_torch):
    D = 8 if use_torch else 6  # 8: torch._grouped_mm's 16-byte rule holds; 6: it does not, the loop runs
    x = torch.randn(10, D, requires_grad=True)
    w = torch.randn(4, D, 4, requires_grad=True)
    end_E = torch.tensor([3, 3, 10, 10])  # experts 1 and 3 get no rows
    dy = torch.randn(10, 4)
    got = torch.autograd.grad(grouped_mm(x, w, end_E), (x, w), dy)
    want = torch.autograd.grad(torch.cat([x[0:3] @ w[0], x[3:10] @ w[2]]), (x, w), dy)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    assert got[1][1].abs().sum() == 0 and got[1][3].abs().sum() == 0  # no rows: zero weight gradient
    torch.testing.assert_close(grouped_mm_loop(x, w, end_E), grouped_mm(x, w, end_E))


def test_soft_forward_is_probability_weighted_sum_of_all_experts():
    experts = Experts(3, 4, 5)
    x = torch.randn(7, 4)
    p = torch.randn(7, 3).softmax(-1)
    want = sum(moe_forward_reference(x, torch.full((7, 1), e), p[:, e : e + 1], experts) for e in range(3))
    torch.testing.assert_close(soft_forward(x, p, experts), want, rtol=1e-4, atol=1e-5)


def test_soft_forward_equals_moe_forward_with_all_experts():
    experts = Experts(4, 6, 5)
    x = torch.randn(9, 6)
    p = torch.randn(9, 4).softmax(-1)
    ids = torch.arange(4).expand(9, 4)
    torch.testing.assert_close(soft_forward(x, p, experts), moe_forward(x, ids, p, experts), rtol=1e-4, atol=1e-5)


def test_triton_without_a_gpu_is_refused_in_one_line(monkeypatch, capsys):
    from minimoe.train import main

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the Triton kernel can run")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert main(["--experts-impl", "triton", "--steps", "1", "--out", "", "--no-baseline"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --experts-impl triton: ") and "CUDA" in err and err.count("\n") == 1
