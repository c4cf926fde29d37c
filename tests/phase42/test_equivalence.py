"""Two ranks, one model: does the expert-parallel run compute what one process computes?

Sharding the experts changes where they run, not what the model computes. With the same seed, the
2-rank job must give every token the one-process output, and follow the one-process losses step by
step, up to float rounding (sums taken in another order: differences below 1e-6 over seeds 0-9).
"""

import torch

from .conftest import LAB, RANKS

TOLERANCE = 1e-5  # above float rounding (below 1e-6 over these runs), below any wrong computation


def test_each_rank_gives_its_tokens_the_one_process_output(two_ranks, one_rank_logits, seed, observe):
    """`logit_gap`: the largest difference between a token's logits on its rank and in one process."""
    want = one_rank_logits(seed)
    rows = LAB.train.batch // RANKS
    gaps = [(r["logits"] - want[rank * rows:(rank + 1) * rows]).abs().amax(dim=-1)
            for rank, r in enumerate(two_ranks(seed))]
    observe("logit_gap", max(float(g.max()) for g in gaps), TOLERANCE, "<=")
    for rank, gap_BS in enumerate(gaps):
        wrong = int((gap_BS > TOLERANCE).sum())
        assert wrong == 0, (
            f"rank {rank}: {wrong} of its {gap_BS.numel()} tokens get other logits than in one process "
            f"(largest difference {gap_BS.max():.4f}; logits std {want.std():.3f})")


def _steps_apart(mine: list[float], want: list[float]) -> str:
    gaps = [abs(a - b) for a, b in zip(mine, want)]
    first = next(i for i, g in enumerate(gaps) if g > TOLERANCE)
    return (f"from step {first + 1}: 2 ranks {mine[first]:.6f} vs one process {want[first]:.6f}; largest "
            f"difference {max(gaps):.2e} over {len(gaps)} steps")


def _largest_gap(mine: list[float], want: list[float]) -> float:
    return max(abs(a - b) for a, b in zip(mine, want))


def test_two_rank_main_loss_follows_one_process(two_ranks, one_rank_run, seed, observe):
    want = [h["main"] for h in one_rank_run(seed).history]
    mine = two_ranks(seed)[0]["main"]
    observe("d_main", _largest_gap(mine, want), TOLERANCE, "<=")
    assert all(abs(a - b) <= TOLERANCE for a, b in zip(mine, want)), "main loss " + _steps_apart(mine, want)


def test_two_rank_aux_loss_follows_one_process(two_ranks, one_rank_run, seed, observe):
    want = [h["aux"] for h in one_rank_run(seed).history]
    mine = two_ranks(seed)[0]["aux"]
    observe("d_aux", _largest_gap(mine, want), TOLERANCE, "<=")
    assert all(abs(a - b) <= TOLERANCE for a, b in zip(mine, want)), "aux loss " + _steps_apart(mine, want)


def test_router_weights_agree_across_ranks(two_ranks, seed, observe):
    routers = [r["router"] for r in two_ranks(seed)]
    spread = max(float((routers[1][i] - routers[0][i]).abs().max()) for i in range(len(routers[0])))
    norm = max(float(w.abs().max()) for w in routers[0])
    observe("router_spread", spread, TOLERANCE, "<=")
    assert spread <= TOLERANCE, (
        f"after {len(two_ranks(seed)[0]['main'])} steps the two ranks' router weights differ by up to {spread:.2e} "
        f"(largest router weight {norm:.3f})")


def test_expert_counts_follow_one_process(two_ranks, one_rank_run, seed, observe):
    """`counts_off`: how many logged steps' routing counts differ from one process (at most one)."""
    want = [e["counts"] for e in one_rank_run(seed).log]
    mine = two_ranks(seed)[0]["counts"]
    off = [i + 1 for i, (a, b) in enumerate(zip(mine, want)) if a != b]
    observe("counts_off", len(off), 1, "<=")
    if len(off) > 1:
        a, b = mine[off[0] - 1], want[off[0] - 1]
        layer = next(i for i in range(len(a)) if a[i] != b[i])
        raise AssertionError(f"the routing counts differ from one process at steps {off}: e.g. step {off[0]} "
                             f"layer {layer} {[int(c) for c in a[layer]]} vs {[int(c) for c in b[layer]]}")
    assert torch.isfinite(torch.tensor(two_ranks(seed)[0]["main"])).all()
