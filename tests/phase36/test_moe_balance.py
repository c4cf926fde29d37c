"""Is the load spread across the experts after training?

The lab model trained for 300 steps (`just moe-train --steps 300`), measured on the 4,096 held-out
tokens of its routing health report. The first test keeps the id of source note 003, "Break 00".
"""

MAX_SHARE = 0.5  # source note 003's bar: no expert above 50% of the tokens
MAX_MEAN_CV_PCT = 50.0  # the load CV of an MoE layer, averaged over its MoE layers


def test_no_expert_above_50_percent(lab_run, seed, observe):
    health = lab_run(seed).final.health
    worst = max(health, key=lambda h: h.max_load)
    observe("max_load", worst.max_load, MAX_SHARE, "<=")
    assert worst.max_load <= MAX_SHARE, (
        f"MoE layer {worst.layer}: one expert gets {worst.max_load:.0%} of the held-out tokens "
        f"(counts {[int(c) for c in worst.counts]})")


def test_expert_load_cv_below_50_percent(lab_run, seed, observe):
    health = lab_run(seed).final.health
    mean_cv = sum(h.cv_pct for h in health) / len(health)
    observe("mean_cv", mean_cv, MAX_MEAN_CV_PCT, "<=")
    assert mean_cv <= MAX_MEAN_CV_PCT, (
        f"mean load CV {mean_cv:.0f}% (per MoE layer {[round(h.cv_pct) for h in health]}; counts "
        f"{[[int(c) for c in h.counts] for h in health]})")
