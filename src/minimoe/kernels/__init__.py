"""Grouped matrix multiply: one matmul per expert over that expert's contiguous rows.

    y_AF[rows of expert e] = x_AD[rows of expert e] @ w_EDF[e]

`offsets_E` holds the end row of each expert's group (int32 or int64 cumulative counts), the
layout `torch._grouped_mm` uses. Every backend is differentiable. Backends:

- `torch`: `torch._grouped_mm` (CPU float32 in torch >= 2.8, CUDA bf16/fp32); the default.
  On CPU it runs one matmul per group in C++: fast while each expert gets many rows, about
  10 us a group beyond the arithmetic otherwise (dispatch.py then pads and batches instead).
- `triton`: the kernels in `grouped_mm_triton.py`, forward and backward (default on a CUDA
  device when Triton is installed; tested on CPU with TRITON_INTERPRET=1).
- `loop`: a plain Python loop over experts; the reference the others are tested against, and
  the fallback where neither of the above is available.

Set `MINIMOE_GROUPED_MM=torch|triton|loop` to force one (environment, not a training flag).
"""

from __future__ import annotations

import os

import torch

BACKENDS = ("torch", "triton", "loop")


def grouped_mm_loop(x_AD: torch.Tensor, w_EDF: torch.Tensor, offsets_E: torch.Tensor) -> torch.Tensor:
    """Reference: slice each expert's rows and multiply by its weight (a loop over experts)."""
    ends = offsets_E.tolist()
    parts = [x_AD[s:e] @ w_EDF[i] for i, (s, e) in enumerate(zip([0] + ends[:-1], ends))]
    return torch.cat(parts) if parts else x_AD.new_zeros(0, w_EDF.shape[-1])


def _torch_ok(x: torch.Tensor, *dims: int) -> bool:
    """torch._grouped_mm exists, takes this dtype, and its 16-byte stride rule holds (dims % 4 == 0 in fp32)."""
    if not hasattr(torch, "_grouped_mm") or x.dtype not in (torch.float32, torch.bfloat16):
        return False
    return all(d % (16 // x.element_size()) == 0 for d in dims)


def grouped_mm(x_AD: torch.Tensor, w_EDF: torch.Tensor, offsets_E: torch.Tensor,
               backend: str | None = None) -> torch.Tensor:
    """x_AD (rows sorted by expert) times each expert's w_EDF[e]; returns y_AF. Differentiable."""
    backend = backend or os.environ.get("MINIMOE_GROUPED_MM") or default_backend(x_AD)
    if backend not in BACKENDS:
        raise ValueError(f"MINIMOE_GROUPED_MM={backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "triton":
        from .grouped_mm_triton import grouped_mm_triton

        return grouped_mm_triton(x_AD, w_EDF, offsets_E)
    if backend == "torch" and _torch_ok(x_AD, *w_EDF.shape[1:]):
        return torch._grouped_mm(x_AD, w_EDF, offs=offsets_E.to(torch.int32))
    return grouped_mm_loop(x_AD, w_EDF, offsets_E)


def default_backend(x: torch.Tensor) -> str:
    """triton on a CUDA device when it is installed, else torch where its stride rule allows, else loop."""
    if x.is_cuda:
        try:
            import triton  # noqa: F401

            return "triton"
        except ImportError:
            pass
    return "torch" if _torch_ok(x, x.shape[-1]) else "loop"
