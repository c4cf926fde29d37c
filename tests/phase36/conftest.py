"""Phase 36's lab settings, shared by its tests: the model the lab pages train.

labs/phase-36-routing-and-balance/lab.yaml: E=4 experts, top-1, expert width 16, a router
initialised near-uniform (std 0.01), 300 steps of 16 x 64 tokens: minimoe's defaults but for the
shorter run, so `lab_run(seed)` is `just moe-train --steps 300 --seed N` (with one thread) and one
row of `just experiment seeds --steps 300`.
"""

import pytest

from minimoe.experiments import lab_config

LAB = lab_config(36)


@pytest.fixture(scope="session")
def lab_run(train_lab):
    """lab_run(seed) -> the trained RunResult for that seed (trained once per session)."""
    return lambda seed: train_lab(LAB, seed)
