"""Break 39-01's detectors: is each expert compressed on its own?

Seed 004 found that replacing a layer's experts by their average destroys the model, while
compressing each expert on its own (ternary, magnitude pruning) works. On this toy (seeds 0-9):
50% magnitude pruning of each expert costs 1.14-1.29x perplexity (8-27 distinct tokens in a
100-token greedy sample), well inside the seed's LENIENT bar of 3x; pruning the average of the
experts instead costs 3.9-5.1x. After ternary quantisation the experts stay about as far apart
as before; quantising their average makes them all equal (spread 0).
"""

import copy

from minimoe.compress import LENIENT, MIN_UNIQUE_TOKENS, expert_diversity, prune_magnitude, quantize_ternary, score

MIN_SPREAD_KEPT = 0.5  # expert spread after ternary / before, per MoE layer


def test_pruned_experts_meet_lenient(lab_run, corpus, seed):
    run = lab_run(seed)
    pruned = copy.deepcopy(run.model)
    prune_magnitude(pruned, 0.5)
    s = score(pruned, corpus, run.final.perplexity)
    assert s.ratio <= LENIENT and s.unique >= MIN_UNIQUE_TOKENS, (
        f"50% per-expert pruning: perplexity {s.ratio:.2f}x the original's with {s.unique} distinct tokens "
        f"in the sample (LENIENT: <= {LENIENT:g}x and >= {MIN_UNIQUE_TOKENS}); verdict {s.verdict}")


def test_ternary_keeps_the_experts_distinct(lab_run, seed):
    model = copy.deepcopy(lab_run(seed).model)
    before = expert_diversity(model)
    quantize_ternary(model)
    after = expert_diversity(model)
    for i, (b, a) in enumerate(zip(before, after)):
        assert a["spread"] >= MIN_SPREAD_KEPT * b["spread"], (
            f"MoE layer {i}: expert spread {b['spread']:.3f} before ternary quantisation, {a['spread']:.3f} "
            "after: the experts were made alike instead of each being quantised on its own")
