"""Other row layouts for the MoE layer's experts (steps 2-4 of moe_block.py), and the cost model that
picks one. The same computation as `moe_block.moe_forward`, tested equal to the reference loop.

moe_forward gives every (token, expert) assignment one row, each expert's rows contiguous: the
*ragged* layout, run by grouped matmuls. On a CPU, torch._grouped_mm runs one matmul per expert,
about 10 us each beyond the arithmetic, so with thousands of experts of a few tokens each the
overhead is most of the time. Two other layouts trade that overhead for padding:

    padded  a block of C rows per expert, C = the busiest expert's count, E*C rows in all (R = E*C),
            the spare rows zero; the experts run as one batched matmul (torch.bmm)
    tiered  padded in tiers: the first gives every expert c_0 rows, the next gives the experts with
            more than c_0 tokens c_1 - c_0 more rows, and so on up to C; each tier is one batched
            matmul (tiered.py), so a few busy experts no longer pad every other expert to their count

`choose_layout` prices each layout in rows with costs measured on a 2-core x86 CPU (D=64, F=128;
`just bench` compares the result with other implementations) and takes the cheapest: that is
`--experts-impl auto`. Whatever the layout, the cost grows with T*K, plus a term in E that every
implementation pays: the E experts' weights are read and their gradients written once per step. On
a GPU the ragged layout is always used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..experts import Experts, swiglu
from .ragged import ragged_forward
from .tiered import tiered_swiglu

LAYOUTS = ("ragged", "padded", "tiered")
# Costs in rows (one row: one assignment through one expert, forward and backward, 1.9 us),
# measured on a 2-core x86 CPU with D=64, F=128 (fit to timings of tiered_swiglu and grouped_mm):
PASS_ROWS = 9  # one expert in a matmul: reading its weights, writing their gradient
PADDING_ROWS = 35  # one grouped-matmul group beyond PASS_ROWS (ragged layout: 9 matmul calls an expert)
GATHER_ROWS = 7  # one expert in a gathered tier, beyond PASS_ROWS: copying its weights in, its gradient back
ZERO_ROWS = 2  # one expert's zero gradient, when no tier holds all experts
TIER_ROWS = 100  # one more tier: its ~25 extra operations
TIERED_MIN_EXPERTS = 256  # take the tiered layout only from this many experts, each of at least
TIERED_MIN_SIZE = 2048    # TIERED_MIN_SIZE = D*F weights: the costs above were fit at E = 512 and 4096
                          # with D*F = 8192; with fewer experts, or experts as small as phase 37's
                          # (D*F = 256), the fixed cost of the tiers' extra operations outweighs the rows
                          # they save (measured slower). Above it, tiers are taken whenever priced cheaper:
                          # where they were priced at 0.8-0.97 of ragged (E = 512-1024, K = 7-8), they ran
                          # 1.6-1.75x faster than ragged between other work (`just bench`, 2-core AMD EPYC)


def _capacities(C: int) -> list[int]:
    """Candidate tier boundaries: 1, 2, 3, 4, 5, 6, 8, 10, 13, 16, ... (about x1.25), then C itself."""
    out, v = [], 1
    while v < C:
        out.append(v)
        v = max(v + 1, round(v * 1.25))
    return out + [C]


def plan_tiers(count_E: torch.Tensor, C: int) -> tuple[float, list[tuple[int, int, bool]]]:
    """The cheapest tiers (in rows, costs above) for these expert counts; C = the busiest count.

    A tier (lo, hi, all) gives each expert that has more than lo tokens the rows for its tokens of
    rank lo..hi-1. all: the tier holds all E experts (only the first can), so their weights are
    used in place; otherwise the tier's experts' weights are gathered. A shortest path over the
    candidate boundaries: best[j] = the cost of covering ranks 0..v_j-1.
    """
    E = len(count_E)
    v = [0] + _capacities(C)
    sorted_E = count_E.sort().values
    n = (E - torch.searchsorted(sorted_E, torch.tensor(v, dtype=sorted_E.dtype), right=True)).tolist()
    best, step = [E * ZERO_ROWS], [None]
    for j in range(1, len(v)):
        cost, how = E * (v[j] + PASS_ROWS) + TIER_ROWS, (0, True)
        for i in range(j):
            c = best[i] + n[i] * (v[j] - v[i] + PASS_ROWS + GATHER_ROWS) + TIER_ROWS
            if c < cost:
                cost, how = c, (i, False)
        best.append(cost)
        step.append(how)
    tiers, j = [], len(v) - 1
    while j:
        i, every = step[j]
        tiers.append((v[i], v[j], every))
        j = i
    return best[-1], tiers[::-1]


def flat_costs(E: int, A: int, C: int) -> tuple[int, int]:
    """The padded and ragged layouts' costs in rows (constants above), for A assignments, C = the busiest."""
    return E * (C + PASS_ROWS) + TIER_ROWS, A + E * (PASS_ROWS + PADDING_ROWS) + TIER_ROWS


def choose_layout(count_E: torch.Tensor, A: int, C: int, x: torch.Tensor,
                  experts_size: int = 64 * 128) -> tuple[str, list | None]:
    """The cheapest layout for A assignments with these expert counts (C = the busiest), and its tiers;
    experts_size: D*F of one expert's weight matrix."""
    if x.is_cuda:
        return "ragged", None
    E = len(count_E)
    padded, ragged = flat_costs(E, A, C)
    best = "padded" if padded <= ragged else "ragged"
    small = E < TIERED_MIN_EXPERTS or experts_size < TIERED_MIN_SIZE
    if small or E * C - A <= TIER_ROWS:  # (next to no padding: nothing for tiers to save)
        return best, None
    tiered, tiers = plan_tiers(count_E, C)
    if tiered >= min(padded, ragged) or (len(tiers) == 1 and tiers[0][2]):
        return best, None  # (one tier of all experts is the padded layout)
    return "tiered", tiers


def auto_forward(x_TD: torch.Tensor, ids_TK: torch.Tensor, weights_TK: torch.Tensor,
                 experts: Experts) -> torch.Tensor:
    """`--experts-impl auto`: moe_forward in the layout choose_layout prices cheapest."""
    count_E = torch.bincount(ids_TK.reshape(-1), minlength=experts.n)
    A = ids_TK.numel()
    C = int(count_E.max()) if A else 0
    layout, tiers = choose_layout(count_E, A, C, x_TD, experts.w_gate_EDF[0].numel())
    if layout == "ragged":
        return ragged_forward(x_TD, ids_TK, weights_TK, experts)
    return layout_forward(x_TD, ids_TK, weights_TK, experts, layout, tiers)


def padded_forward(x_TD: torch.Tensor, ids_TK: torch.Tensor, weights_TK: torch.Tensor,
                   experts: Experts) -> torch.Tensor:
    """`--experts-impl padded`: moe_forward with C rows per expert, run as one batched matmul."""
    return layout_forward(x_TD, ids_TK, weights_TK, experts, "padded")


def tiered_forward(x_TD: torch.Tensor, ids_TK: torch.Tensor, weights_TK: torch.Tensor,
                   experts: Experts) -> torch.Tensor:
    """`--experts-impl tiered`: moe_forward in the cheapest tiers of padded rows."""
    return layout_forward(x_TD, ids_TK, weights_TK, experts, "tiered")


def layout_forward(x_TD: torch.Tensor, ids_TK: torch.Tensor, weights_TK: torch.Tensor, experts: Experts,
                   layout: str, tiers: list | None = None) -> torch.Tensor:
    """moe_forward's steps 2-4 in the padded or tiered layout (tiers None: plan_tiers decides)."""
    if layout not in ("padded", "tiered"):
        raise ValueError(f"layout {layout!r}: choose padded or tiered (ragged is moe_block.moe_forward)")
    T, K = ids_TK.shape
    E, A, dev = experts.n, T * K, x_TD.device
    expert_A, order_A = ids_TK.reshape(-1).sort(stable=True)  # 2. sorted by expert; order_A: which (t, k)
    count_E = torch.bincount(expert_A, minlength=E)
    C = int(count_E.max()) if A else 0
    rank_A = torch.arange(A, device=dev) - (count_E.cumsum(0) - count_E)[expert_A]  # its place among its expert's
    if layout == "padded":  # row = the expert's block + the assignment's rank within it
        row_A, R = expert_A * C + rank_A, E * C
    else:
        row_A, R, tiers = _tier_rows(count_E, expert_A, rank_A, tiers or plan_tiers(count_E, C)[1])
    token_R = torch.full((R,), T, device=dev)  # spare rows read row T of x: zeros
    token_R[row_A] = order_A // K
    x_RD = F.pad(x_TD, (0, 0, 0, 1)).index_select(0, token_R)  # 3.
    if layout == "padded":  # (E, C, D) @ (E, D, F): the SwiGLU batched over the E experts
        y_RD = swiglu(x_RD.view(E, C, -1), experts.w_gate_EDF, experts.w_up_EDF, experts.w_down_EFD).view(R, -1)
    else:
        y_RD = tiered_swiglu(x_RD, experts, tiers)
    row_TK = torch.empty_like(row_A)  # 4. the row holding each (t, k)'s output
    row_TK[order_A] = row_A
    y_TKD = y_RD.index_select(0, row_TK).view(T, K, -1)
    return (y_TKD * weights_TK.unsqueeze(-1).to(y_TKD.dtype)).sum(dim=1)


def _tier_rows(count_E, expert_A, rank_A, tiers):
    """Rows for the tiered layout: each assignment's row, the row count, and the tiers as
    (expert ids or None, n experts, rows each) for tiered_swiglu."""
    E, dev = len(count_E), count_E.device
    lo_t, cap_t, offset_t, pos_tE, out, R = [], [], [], [], [], 0
    for lo, hi, every in tiers:
        if every:
            ids, pos_E = None, torch.arange(E, device=dev)
        else:
            member_E = count_E > lo
            ids, pos_E = member_E.nonzero().squeeze(1), member_E.cumsum(0) - 1
        n = E if ids is None else len(ids)
        lo_t.append(lo), cap_t.append(hi - lo), offset_t.append(R), pos_tE.append(pos_E)
        out.append((ids, n, hi - lo))
        R += n * (hi - lo)
    tier_A = torch.searchsorted(torch.tensor([hi for _, hi, _ in tiers], device=dev), rank_A, right=True)
    lo_A, cap_A = torch.tensor(lo_t, device=dev)[tier_A], torch.tensor(cap_t, device=dev)[tier_A]
    pos_A = torch.stack(pos_tE)[tier_A, expert_A]
    row_A = torch.tensor(offset_t, device=dev)[tier_A] + pos_A * cap_A + rank_A - lo_A
    return row_A, R, out
