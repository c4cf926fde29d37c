"""How many assignments does the trained lab model drop on held-out tokens, at C = 1?

Measured over seeds 0-9 (labs/phase-41-*/README.md): the lab model drops 3-11% of its held-out
assignments, averaged over its two MoE layers.
"""

MAX_DROP_PCT = 20.0


def test_held_out_drop_rate_below_20_percent_at_capacity_factor_1(lab_run, seed, observe):
    health = lab_run(seed).final.health
    mean = sum(h.drop_pct for h in health) / len(health)
    observe("drop", mean, MAX_DROP_PCT, "<=")
    assert mean <= MAX_DROP_PCT, (
        f"{mean:.1f}% of the held-out (token, expert) assignments dropped (per layer "
        f"{[round(h.drop_pct, 1) for h in health]}%; capacity {[h.capacity for h in health]}, "
        f"busiest expert kept {[h.kept_max for h in health]})")
