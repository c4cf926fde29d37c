"""Which assignments does a full expert drop? The drop policy (--drop-policy), checked on routings
drawn from the seed.

Both policies serve every token's first choice before any token's second choice (GShard). Among the
tokens, `position` serves them in their order in the batch (GShard, Switch), `probability` by their top
router probability, most confident first (batch-prioritised routing, V-MoE).
"""


from minimoe.capacity import expert_capacity, keep_within_capacity

from .conftest import LAB
from .test_capacity import skewed_routing

T = 512


def _first_choice_drops(seed, policy):
    E, K = LAB.moe.experts, LAB.moe.top_k
    ids_TK, probs_TE = skewed_routing(seed, T, E, K)
    capacity = expert_capacity(T, K, E, 0.75)
    return ids_TK, probs_TE, keep_within_capacity(ids_TK, probs_TE, capacity, policy), capacity


def test_a_full_expert_keeps_its_earliest_tokens_under_the_position_policy(seed, observe):
    """`overtaken`: how many of an expert's dropped first choices come from tokens earlier in the batch
    than its last kept one (the worst expert)."""
    ids_TK, _, keep_TK, capacity = _first_choice_drops(seed, "position")
    overtaken = 0
    for e in range(LAB.moe.experts):
        mine = ids_TK[:, 0] == e
        kept, dropped = mine & keep_TK[:, 0], mine & ~keep_TK[:, 0]
        if dropped.any() and kept.any():
            overtaken = max(overtaken, int((dropped.nonzero() < kept.nonzero().max()).sum()))
    observe("overtaken", overtaken, 0, "<=")
    for e in range(LAB.moe.experts):
        mine = ids_TK[:, 0] == e  # first choices only: they are all served before any second choice
        kept, dropped = mine & keep_TK[:, 0], mine & ~keep_TK[:, 0]
        if dropped.any():
            last_kept, first_dropped = int(kept.nonzero().max()), int(dropped.nonzero().min())
            assert last_kept < first_dropped, (
                f"expert {e} (capacity {capacity}) keeps the first choice of token {last_kept} but drops "
                f"that of the earlier token {first_dropped}")


def test_a_full_expert_keeps_its_most_confident_tokens_under_the_probability_policy(seed, observe):
    """`confidence_gap`: the largest top probability an expert drops minus the smallest it keeps (first
    choices; the worst expert)."""
    ids_TK, probs_TE, keep_TK, capacity = _first_choice_drops(seed, "probability")
    top_T = probs_TE.max(dim=-1).values
    gaps = [float(top_T[(ids_TK[:, 0] == e) & ~keep_TK[:, 0]].max() - top_T[(ids_TK[:, 0] == e) & keep_TK[:, 0]].min())
            for e in range(LAB.moe.experts)
            if ((ids_TK[:, 0] == e) & ~keep_TK[:, 0]).any() and ((ids_TK[:, 0] == e) & keep_TK[:, 0]).any()]
    observe("confidence_gap", max(gaps, default=-1.0), 0.0, "<=")
    for e in range(LAB.moe.experts):
        mine = ids_TK[:, 0] == e
        kept, dropped = mine & keep_TK[:, 0], mine & ~keep_TK[:, 0]
        if dropped.any():
            least_kept, most_dropped = float(top_T[kept].min()), float(top_T[dropped].max())
            assert least_kept >= most_dropped, (
                f"expert {e} (capacity {capacity}) keeps a first choice of top probability {least_kept:.4f} and "
                f"drops one of {most_dropped:.4f}")


def test_every_first_choice_is_served_before_any_second_choice(seed, observe):
    """`second_kept`: second choices kept by an expert that drops first choices (the worst expert)."""
    worst = 0
    for policy in ("position", "probability"):
        ids_TK, _, keep_TK, _ = _first_choice_drops(seed, policy)
        for e in range(LAB.moe.experts):
            if ((ids_TK[:, 0] == e) & ~keep_TK[:, 0]).any():
                worst = max(worst, int(((ids_TK[:, 1] == e) & keep_TK[:, 1]).sum()))
    observe("second_kept", worst, 0, "<=")
    for policy in ("position", "probability"):
        ids_TK, _, keep_TK, capacity = _first_choice_drops(seed, policy)
        for e in range(LAB.moe.experts):
            first_dropped = bool(((ids_TK[:, 0] == e) & ~keep_TK[:, 0]).any())
            second_kept = int(((ids_TK[:, 1] == e) & keep_TK[:, 1]).sum())
            assert not (first_dropped and second_kept), (
                f"{policy} policy: expert {e} (capacity {capacity}) drops first choices but keeps {second_kept} "
                "second choices")
