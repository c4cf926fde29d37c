"""Phase 36's lab settings, shared by its detectors: the model the lab pages train.

labs/phase-36-routing-and-balance/lab.yaml: E=4 experts, top-1, expert width 16, a router
initialised near-uniform (std 0.01), 300 steps of 16 x 64 tokens. Measured over seeds 0-9 (see
labs/phase-36-*/README.md for the margins): with the aux loss the worst layer's busiest expert takes
0.29-0.41 of the held-out tokens, without it 0.58-0.93.
"""

import pytest

from minimoe.experiments import lab_config

LAB = lab_config(36)


@pytest.fixture(scope="session")
def lab_run(train_lab):
    """lab_run(seed) -> the trained RunResult for that seed (trained once per session)."""
    return lambda seed: train_lab(LAB, seed)
