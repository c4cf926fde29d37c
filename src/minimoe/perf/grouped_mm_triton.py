"""Grouped matmul in Triton (`--experts-impl triton`): the experts' matmuls, the part of an MoE layer
that dominates on a GPU.

    forward   y_AF[rows of e]  = x_AD[rows of e] @ w_EDF[e]
    backward  dx_AD[rows of e] = dy_AF[rows of e] @ w_EDF[e]^T     (the same kernel, w read transposed)
              dw_EDF[e]        = x_AD[rows of e]^T @ dy_AF[rows of e]

How the work is split (the "tile schedule" of MegaBlocks, Gale et al., 2022, and of the Triton
grouped-GEMM tutorial): each expert's rows are cut into tiles of BLOCK_M rows; one program
computes one (row tile, column block) of y, so an expert with no rows costs nothing and a busy
expert gets many programs. The schedule (which expert and which rows each tile covers) is built
with a few torch ops on the host side. The weight gradient runs one program per (expert, D
block, F block), looping over that expert's rows.

`grouped_mm_triton` is differentiable (a torch.autograd.Function); `triton_forward` is
moe_block.moe_forward with it in place of experts.grouped_mm. On CPU it runs only under
TRITON_INTERPRET=1, which is how the tests check it against the loop reference; there, small
blocks keep it fast (tl.dot needs every block dimension >= 16). Triton is optional:
pip install -e ".[triton]".
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ..experts import Experts
from ..moe_block import moe_forward

# Tile sizes: large enough to keep a GPU's tensor cores busy; in the interpreter (numpy on the
# CPU) the smallest tl.dot allows, so the tests take seconds.
_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
BLOCK_M = 16 if _INTERPRET else 64  # rows of x per tile
BLOCK_N = 16 if _INTERPRET else 64  # columns of y per tile
BLOCK_K = 16 if _INTERPRET else 32  # reduction step


@triton.jit
def _grouped_mm_kernel(x_ptr, w_ptr, y_ptr, tile_expert_ptr, tile_row_ptr, end_ptr,
                       N, K, sx_a, sx_k, sw_e, sw_k, sw_n, sy_a, sy_n,
                       PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                       BLOCK_K: tl.constexpr):
    tile, col_block = tl.program_id(0), tl.program_id(1)
    e = tl.load(tile_expert_ptr + tile)
    rows = tl.load(tile_row_ptr + tile) + tl.arange(0, BLOCK_M)
    row_ok = rows < tl.load(end_ptr + e)  # the last tile of an expert is partly empty
    cols = col_block * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        x = tl.load(x_ptr + rows[:, None] * sx_a + ks[None, :] * sx_k,
                    mask=row_ok[:, None] & (ks[None, :] < K), other=0.0)
        w = tl.load(w_ptr + e * sw_e + ks[:, None] * sw_k + cols[None, :] * sw_n,
                    mask=(ks[:, None] < K) & (cols[None, :] < N), other=0.0)
        acc = tl.dot(x, w, acc, input_precision=PRECISION)
    tl.store(y_ptr + rows[:, None] * sy_a + cols[None, :] * sy_n, acc.to(y_ptr.dtype.element_ty),
             mask=row_ok[:, None] & (cols[None, :] < N))


@triton.jit
def _grouped_wgrad_kernel(x_ptr, dy_ptr, dw_ptr, start_ptr, end_ptr, D, N,
                          sx_a, sx_d, sdy_a, sdy_n, sdw_e, sdw_d, sdw_n, PRECISION: tl.constexpr,
                          BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_A: tl.constexpr):
    e, d_block, n_block = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    start, end = tl.load(start_ptr + e), tl.load(end_ptr + e)
    ds = d_block * BLOCK_D + tl.arange(0, BLOCK_D)
    ns = n_block * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_D, BLOCK_N), dtype=tl.float32)
    for a0 in range(start, end, BLOCK_A):  # this expert's rows only; none: dw[e] = 0
        rows = a0 + tl.arange(0, BLOCK_A)
        row_ok = rows < end
        xt = tl.load(x_ptr + rows[None, :] * sx_a + ds[:, None] * sx_d,
                     mask=row_ok[None, :] & (ds[:, None] < D), other=0.0)  # x^T block: (BLOCK_D, BLOCK_A)
        dy = tl.load(dy_ptr + rows[:, None] * sdy_a + ns[None, :] * sdy_n,
                     mask=row_ok[:, None] & (ns[None, :] < N), other=0.0)
        acc = tl.dot(xt, dy, acc, input_precision=PRECISION)
    tl.store(dw_ptr + e * sdw_e + ds[:, None] * sdw_d + ns[None, :] * sdw_n, acc.to(dw_ptr.dtype.element_ty),
             mask=(ds[:, None] < D) & (ns[None, :] < N))


def _precision(x: torch.Tensor) -> str:
    """fp32 inputs use TF32 tensor cores only where torch would (torch.backends.cuda.matmul.allow_tf32)."""
    if x.dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32:
        return "ieee"
    return "tf32"


def _tile_schedule(offsets_E: torch.Tensor, block_m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For every tile of block_m rows: its expert and its first row. Experts with no rows get no tile."""
    end_E = offsets_E.long()
    count_E = torch.diff(end_E, prepend=end_E.new_zeros(1))
    tiles_E = (count_E + block_m - 1) // block_m
    tile_expert = torch.repeat_interleave(torch.arange(len(end_E), device=end_E.device), tiles_E)
    first_tile_E = tiles_E.cumsum(0) - tiles_E
    tile_in_expert = torch.arange(len(tile_expert), device=end_E.device) - first_tile_E[tile_expert]
    tile_row = (end_E - count_E)[tile_expert] + tile_in_expert * block_m
    return tile_expert.to(torch.int32), tile_row.to(torch.int32)


def grouped_mm_forward(x_AD: torch.Tensor, w_EDF: torch.Tensor, offsets_E: torch.Tensor) -> torch.Tensor:
    """y_AF without autograd; w_EDF may be a transposed view (the backward pass passes w^T)."""
    A, K = x_AD.shape
    N = w_EDF.shape[-1]
    y_AF = x_AD.new_empty(A, N)
    tile_expert, tile_row = _tile_schedule(offsets_E, BLOCK_M)
    if len(tile_expert) == 0:
        return y_AF
    grid = (len(tile_expert), triton.cdiv(N, BLOCK_N))
    _grouped_mm_kernel[grid](x_AD, w_EDF, y_AF, tile_expert, tile_row, offsets_E.to(torch.int32),
                             N, K, *x_AD.stride(), *w_EDF.stride(), *y_AF.stride(),
                             PRECISION=_precision(x_AD), BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K)
    return y_AF


def grouped_mm_wgrad_triton(x_AD: torch.Tensor, dy_AF: torch.Tensor, offsets_E: torch.Tensor) -> torch.Tensor:
    """dw_EDF[e] = x_AD[rows of e]^T @ dy_AF[rows of e]; an expert with no rows gets zeros."""
    D, N, E = x_AD.shape[1], dy_AF.shape[1], len(offsets_E)
    dw_EDF = x_AD.new_empty(E, D, N)
    end_E = offsets_E.to(torch.int32)
    start_E = torch.cat([end_E.new_zeros(1), end_E[:-1]])
    grid = (E, triton.cdiv(D, BLOCK_N), triton.cdiv(N, BLOCK_N))
    _grouped_wgrad_kernel[grid](x_AD, dy_AF, dw_EDF, start_E, end_E, D, N,
                                *x_AD.stride(), *dy_AF.stride(), *dw_EDF.stride(),
                                PRECISION=_precision(x_AD), BLOCK_D=BLOCK_N, BLOCK_N=BLOCK_N, BLOCK_A=BLOCK_K)
    return dw_EDF


class _GroupedMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_AD, w_EDF, offsets_E):
        ctx.save_for_backward(x_AD, w_EDF, offsets_E)
        return grouped_mm_forward(x_AD, w_EDF, offsets_E)

    @staticmethod
    def backward(ctx, dy_AF):
        x_AD, w_EDF, offsets_E = ctx.saved_tensors
        dx = grouped_mm_forward(dy_AF, w_EDF.transpose(-2, -1), offsets_E) if ctx.needs_input_grad[0] else None
        dw = grouped_mm_wgrad_triton(x_AD, dy_AF, offsets_E) if ctx.needs_input_grad[1] else None
        return dx, dw, None


def grouped_mm_triton(x_AD: torch.Tensor, w_EDF: torch.Tensor, offsets_E: torch.Tensor) -> torch.Tensor:
    """x_AD (rows sorted by expert) times each expert's w_EDF[e]; returns y_AF. Differentiable."""
    return _GroupedMM.apply(x_AD, w_EDF, offsets_E)


class TritonExperts:
    """The same experts' weights, run on their rows by the Triton kernel (what moe_forward calls)."""

    def __init__(self, experts: Experts):
        self.experts, self.n = experts, experts.n

    def __call__(self, x_AD: torch.Tensor, end_E: torch.Tensor) -> torch.Tensor:
        ex = self.experts
        h_AF = F.silu(grouped_mm_triton(x_AD, ex.w_gate_EDF, end_E)) * grouped_mm_triton(x_AD, ex.w_up_EDF, end_E)
        return grouped_mm_triton(h_AF, ex.w_down_EFD, end_E)


def triton_forward(x_TD: torch.Tensor, ids_TK: torch.Tensor, weights_TK: torch.Tensor,
                   experts: Experts) -> torch.Tensor:
    """`--experts-impl triton`: moe_forward with the experts' grouped matmuls in Triton."""
    return moe_forward(x_TD, ids_TK, weights_TK, TritonExperts(experts))
