"""Phase 38's lab settings, shared by its tests: two models, each written once in its own phase.

LAB is phase 36's toy (labs/phase-36-*/lab.yaml: E=4 experts, expert width 16, a near-uniform router
init) used untrained by the load-telemetry tests: they check what the telemetry counts, which
needs no training.

COMPRESS_LAB is the model `just compress` trains and compresses (labs/phase-39-*/lab.yaml): E=16
experts, top-2, expert width 16, every expert starting from the same init, 300 steps of 16 x 64
tokens. It is trained once per seed per test session (`train_lab` in tests/conftest.py); phase 39's
tests use the same runs.
"""

import pytest

from minimoe.config import Config
from minimoe.data import eval_windows
from minimoe.experiments import lab_config

LAB = lab_config(36)
COMPRESS_LAB = lab_config(39)


def held_out(corpus, cfg: Config = COMPRESS_LAB):
    """The held-out windows the routing is compared on (the same tokens `evaluate` uses)."""
    x_BS, _ = eval_windows(corpus.val_ids, cfg.model.context, cfg.train.eval_tokens)
    return x_BS


@pytest.fixture(scope="session")
def compress_lab_run(train_lab):
    """compress_lab_run(seed) -> the trained RunResult of phase 39's lab model for that seed."""
    return lambda seed: train_lab(COMPRESS_LAB, seed)
