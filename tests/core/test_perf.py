"""The speed room's layouts (minimoe/perf/): tiers cover every row once, and the cost model picks as measured.

That every layout computes what the reference loop computes is tested in test_moe_forward.py.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_moe_forward import same_as_reference

from minimoe.experts import Experts
from minimoe.perf import layouts
from minimoe.perf.adamw import AdamW
from minimoe.perf.layouts import choose_layout, layout_forward, plan_tiers
from minimoe.perf.ragged import ragged_forward
from minimoe.router import Router, route


def _free_tiers(monkeypatch):
    """Make tiers cost nothing but their rows: the plan then cuts many tiers, none holding all experts."""
    for name in ("PASS_ROWS", "GATHER_ROWS", "ZERO_ROWS", "TIER_ROWS"):
        monkeypatch.setattr(layouts, name, 0)


@settings(max_examples=15, deadline=None)
@given(T=st.integers(1, 60), E=st.integers(2, 12), data=st.data())
def test_many_gathered_tiers_equal_reference_loop(T, E, data):
    with pytest.MonkeyPatch.context() as mp:
        _free_tiers(mp)
        K = data.draw(st.integers(1, E))
        torch.manual_seed(data.draw(st.integers(0, 1000)))
        r = route(torch.randn(T, E) * 10.0, K)
        tiered = lambda x, ids, w, ex: layout_forward(x, ids, w, ex, "tiered")  # noqa: E731
        same_as_reference(tiered, torch.randn(T, 4), r.ids_TK, r.weights_TK.detach(), Experts(E, 4, 8))


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
    row_A, R, _ = layouts._tier_rows(count_E, expert_A, rank_A, tiers)
    assert len(row_A.unique()) == len(row_A) and int(row_A.max()) < R  # one row each, inside the tiers


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 50), E=st.integers(1, 12), K=st.integers(1, 4), D=st.sampled_from([3, 4, 8]), data=st.data())
def test_the_gathering_backward_equals_the_reference_loop(T, E, K, D, data):
    """ragged.py's ragged layout (auto's choice for few experts of many rows): any routing, K up to 4,
    experts without tokens; output, d x, d combine weights and d weights as the reference loop's."""
    K = min(K, E)
    torch.manual_seed(data.draw(st.integers(0, 1000)))
    r = route(torch.randn(T, E) * data.draw(st.sampled_from([1.0, 10.0])), K)
    same_as_reference(ragged_forward, torch.randn(T, D), r.ids_TK, r.weights_TK.detach(), Experts(E, D, 4))


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
    ragged = layouts.flat_costs(512, A, C)[1]
    assert 0.8 < plan_tiers(count_E, C)[0] / ragged < 1
    assert choose_layout(count_E, A, C, x, experts_size=64 * 128)[0] == "tiered"
    assert choose_layout(count_E, A, C, x, experts_size=32 * 8)[0] != "tiered"  # phase 37: D*F = 256


def test_an_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="padded or tiered"):
        layout_forward(torch.randn(2, 4), torch.zeros(2, 1, dtype=torch.long), torch.ones(2, 1), Experts(1, 4, 4),
                       "ragged")


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adamw_equals_torch_adamw_bit_for_bit(weight_decay):
    """The training loop's AdamW (perf/adamw.py) moves every parameter exactly as torch.optim.AdamW does,
    including a parameter that gets no gradient for its first steps."""
    torch.manual_seed(0)
    ours = [torch.randn(5, 3, requires_grad=True), torch.randn(7, requires_grad=True), torch.randn(2, 2, 2)]
    ours[2].requires_grad_(True)
    theirs = [p.detach().clone().requires_grad_(True) for p in ours]
    opt_ours, opt_theirs = AdamW(ours, lr=3e-3, weight_decay=weight_decay), torch.optim.AdamW(
        theirs, lr=3e-3, weight_decay=weight_decay)
    for step in range(20):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            g = None if i == 2 and step < 4 else torch.randn_like(a)
            a.grad, b.grad = g, None if g is None else g.clone()
        opt_ours.step()
        opt_theirs.step()
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b), f"step {step}: max difference {float((a - b).abs().max())}"
    opt_ours.zero_grad()
    assert all(p.grad is None for p in ours)
