"""Phase 39's lab settings: the model `just compress` trains (its defaults).

E=16 experts, top-2, expert width 16, every expert starting from the same init, aux 0.01, 300
steps of 16 x 64 tokens; defined once in tests/phase38/conftest.py (phase 38's compression
detectors use the same model) and trained once per seed per test session. Measured over seeds
0-9: labs/phase-39-*/README.md.
"""

import pytest

from phase38.conftest import COMPRESS_LAB


@pytest.fixture(scope="session")
def lab_run(train_lab):
    """lab_run(seed) -> the trained RunResult for that seed (shared with phase 38)."""
    return lambda seed: train_lab(COMPRESS_LAB, seed)
