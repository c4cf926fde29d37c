"""Phase 39's lab settings: the model `just compress` trains (labs/phase-39-expert-compression/lab.yaml).

E=16 experts, top-2, expert width 16, every expert starting from the same init, aux 0.01, 300
steps of 16 x 64 tokens; phase 38's compression tests use the same model, and the same runs:
trained once per seed per test session. `lab_run(seed)` is the model `just compress --seed N`
trains (with one thread).
"""

import pytest

from minimoe.experiments import lab_config

LAB = lab_config(39)


@pytest.fixture(scope="session")
def lab_run(train_lab):
    """lab_run(seed) -> the trained RunResult for that seed (shared with phase 38)."""
    return lambda seed: train_lab(LAB, seed)
