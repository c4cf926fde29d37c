"""Phase 37's lab settings, shared by its tests: the Super-4096 model at E=256, balanced by the
aux-free bias alone.

labs/phase-37-extreme-sparsity/lab.yaml: D=32, 2 MoE blocks, E=256 routed experts of hidden width 8,
top-7, one shared expert (the shape of `just experiment super4096`), aux loss off (aux_alpha 0),
aux-free bias rate 0.01, 100 steps of 16 x 64 tokens: `lab_run(seed)` is the hunt's `just moe-train`
run with those flags and `--seed N` (one thread), and one row of its `just experiment seeds`.
"""

import pytest

from minimoe.experiments import lab_config

LAB = lab_config(37)


@pytest.fixture(scope="session")
def lab_run(train_lab):
    """lab_run(seed) -> the trained RunResult for that seed (trained once per session)."""
    return lambda seed: train_lab(LAB, seed)
