"""Does compressing each expert keep what the experts learnt?

Source note 004 found that replacing a layer's experts by their average destroys the model, while
compressing each expert on its own (ternary, magnitude pruning) works. Measured as `just compress`
measures it: held-out perplexity relative to the uncompressed model's, distinct tokens in a
100-token greedy sample, and the expert spread (mean distance between two experts of a layer / one
expert's norm) before and after.
"""

import copy

from minimoe.compress import (
    LENIENT,
    MIN_UNIQUE_TOKENS,
    expert_diversity,
    moe_weights,
    prune_magnitude,
    quantize_ternary,
    score,
)

MIN_SPREAD_KEPT = 0.5  # expert spread after ternary / before, per MoE layer
MAX_ZERO_SHARE = 0.6  # share of an expert matrix's weights that ternary quantisation sets to zero


def test_pruned_experts_meet_lenient(lab_run, corpus, seed, observe):
    run = lab_run(seed)
    pruned = copy.deepcopy(run.model)
    prune_magnitude(pruned, 0.5)
    s = score(pruned, corpus, run.final.perplexity)
    observe("prune_unique", s.unique)
    observe("prune_ratio", s.ratio, LENIENT, "<=")
    assert s.ratio <= LENIENT and s.unique >= MIN_UNIQUE_TOKENS, (
        f"50% per-expert pruning: perplexity {s.ratio:.2f}x the original's with {s.unique} distinct tokens "
        f"in the sample (LENIENT: <= {LENIENT:g}x and >= {MIN_UNIQUE_TOKENS}); verdict {s.verdict}")


def test_ternary_keeps_the_experts_distinct(lab_run, seed, observe):
    model = copy.deepcopy(lab_run(seed).model)
    before = expert_diversity(model)
    quantize_ternary(model)
    after = expert_diversity(model)
    kept = [a["spread"] / b["spread"] for a, b in zip(after, before)]
    observe("ternary_spread_after", min(a["spread"] for a in after))
    observe("spread_kept", min(kept), MIN_SPREAD_KEPT, ">=")
    assert min(kept) >= MIN_SPREAD_KEPT, (
        f"expert spread per MoE layer before ternary quantisation {[round(b['spread'], 3) for b in before]}, "
        f"after {[round(a['spread'], 3) for a in after]}")


def test_ternary_keeps_most_weights_nonzero(lab_run, corpus, seed, observe):
    """Also records the ternary model's perplexity ratio, the number `just compress` prints for it."""
    run = lab_run(seed)
    model = copy.deepcopy(run.model)
    quantize_ternary(model)
    shares = {f"{name}[{e}]": float((w[e] == 0).float().mean())
              for name, w in moe_weights(model) if ".experts." in name for e in range(w.shape[0])}
    worst = max(shares, key=shares.get)
    observe("ternary_ratio", score(model, corpus, run.final.perplexity).ratio)
    observe("zero_share", shares[worst], MAX_ZERO_SHARE, "<=")
    assert shares[worst] <= MAX_ZERO_SHARE, (
        f"after ternary quantisation {shares[worst]:.0%} of {worst} is zero; over the experts' matrices "
        f"{min(shares.values()):.0%}..{max(shares.values()):.0%}")

