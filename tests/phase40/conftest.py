"""Phase 40's lab settings, shared by its tests: the models the lab pages compare.

The lab compares a dense model with MoEs of the same active FFN width, (K + S) * F = 32:
D=48, 2 blocks, K=1, S=1 shared expert, F=16 (labs/phase-40-fair-comparisons/fair.yaml), E in
{16, 64} (minimoe.experiments.fair). The tests are deterministic: each seed draws another model
shape (`fair.audit_shape`: 1-3 blocks, at least one MoE block, one or two shared experts) and
another comparison (`fair.audit_comparison`: one more E, K = 1 or 2, another gamma), so an
accounting that is off for some shapes cannot pass by luck. `just experiment fair --audit 10`
prints what they check, seed by seed (its active_gap and budget_gap columns).
"""

import pytest

from minimoe.experiments.fair import base_config


@pytest.fixture(scope="session")
def lab_base(corpus):
    """The fair comparison's shared settings, with the built-in corpus's vocabulary."""
    return base_config(vocab_size=corpus.vocab_size)
