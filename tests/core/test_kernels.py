"""The Triton grouped matmul (--experts-impl triton) equals the loop reference, forward and backward.

Without a CUDA device the kernels run in Triton's interpreter (TRITON_INTERPRET=1, numpy on the
CPU), with the small blocks grouped_mm_triton.py picks there; the shapes stay small so the whole
file takes seconds.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # read when the kernels are defined: before the import
pytest.importorskip("triton", reason="triton is not installed: the Triton kernel is optional "
                    "(pip install -e '.[triton]'; CI installs it and runs these tests)")

from minimoe.experts import Experts, grouped_mm_loop  # noqa: E402
from minimoe.moe_block import moe_forward_reference  # noqa: E402
from minimoe.perf import grouped_mm_triton as triton_mod  # noqa: E402
from minimoe.perf import implementation  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _offsets(counts):
    return torch.tensor(counts, device=DEVICE).cumsum(0)


@pytest.mark.parametrize("A,D,F,counts", [
    (37, 20, 24, [0, 9, 7, 9, 12]),  # first expert empty; D, F not multiples of the block: masked edges
    (40, 16, 16, [17, 0, 23]),  # an expert with more rows than one tile
    (5, 8, 4, [0, 5, 0]),  # fewer rows than one tile
])
def test_triton_grouped_mm_forward_and_backward_equal_loop(A, D, F, counts):
    torch.manual_seed(0)
    offsets = _offsets(counts)
    x = torch.randn(A, D, device=DEVICE, requires_grad=True)
    w = torch.randn(len(counts), D, F, device=DEVICE, requires_grad=True)
    dy = torch.randn(A, F, device=DEVICE)
    y = triton_mod.grouped_mm_triton(x, w, offsets)
    y.backward(dy)
    x2, w2 = x.detach().clone().requires_grad_(True), w.detach().clone().requires_grad_(True)
    y2 = grouped_mm_loop(x2, w2, offsets)
    y2.backward(dy)
    tol = {"rtol": 1e-4, "atol": 1e-4} if DEVICE == "cpu" else {"rtol": 2e-2, "atol": 2e-2}  # GPU: TF32
    torch.testing.assert_close(y, y2, **tol)
    torch.testing.assert_close(x.grad, x2.grad, **tol)
    torch.testing.assert_close(w.grad, w2.grad, **tol)


def test_triton_wgrad_gives_zeros_to_experts_without_rows():
    offsets = _offsets([0, 6, 0, 4])
    x, dy = torch.randn(10, 16, device=DEVICE), torch.randn(10, 16, device=DEVICE)
    dw = triton_mod.grouped_mm_wgrad_triton(x, dy, offsets)
    w = torch.zeros(4, 16, 16, device=DEVICE, requires_grad=True)
    (want,) = torch.autograd.grad(grouped_mm_loop(x, w, offsets), w, dy)
    torch.testing.assert_close(dw, want, rtol=1e-4, atol=1e-4)
    assert dw[0].abs().sum() == 0 and dw[2].abs().sum() == 0


def test_experts_impl_triton_equals_reference():
    torch.manual_seed(0)
    experts = Experts(4, 16, 16).to(DEVICE)
    x = torch.randn(12, 16, device=DEVICE, requires_grad=True)
    ids = torch.randint(0, 4, (12, 2), device=DEVICE)
    w = torch.rand(12, 2, device=DEVICE)
    y = implementation("triton")(x, ids, w, experts)
    y.sum().backward()
    got = [x.grad.clone()] + [p.grad.clone() for p in experts.parameters()]
    x.grad = None
    experts.zero_grad()
    y2 = moe_forward_reference(x, ids, w, experts)
    y2.sum().backward()
    want = [x.grad] + [p.grad for p in experts.parameters()]
    torch.testing.assert_close(y, y2, rtol=1e-4, atol=1e-4)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
