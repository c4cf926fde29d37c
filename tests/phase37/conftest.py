"""Phase 37's lab settings, shared by its detectors: the Super-4096 model at E=256, balanced by the
aux-free bias alone.

D=32, 2 MoE blocks, E=256 routed experts of hidden width 8, top-7, one shared expert (the shape of
`just experiment super4096`), aux loss off (aux_alpha 0), aux-free bias rate 0.01, 100 steps of
16 x 64 tokens, one thread. Measured over seeds 0-9 (labs/phase-37-*/README.md has the table): dead
experts on 4,096 held-out tokens, summed over both layers (of 512), are 32-65 with the bias, 328-346
with the bias not applied (the same as no balancing) and 407-417 with its update's sign flipped.
"""

import pytest

from minimoe.config import Config

LAB = Config().replace(
    model={"width": 32, "heads": 2, "layers": 2},
    moe={"experts": 256, "top_k": 7, "shared": 1, "expert_hidden": 8, "aux_alpha": 0.0,
         "bias_update_rate": 0.01},
    train={"steps": 100, "batch": 16, "threads": 1, "eval_tokens": 4096, "baseline": False, "out": ""},
)


@pytest.fixture(scope="session")
def lab_run(train_lab):
    """lab_run(seed) -> the trained RunResult for that seed (trained once per session)."""
    return lambda seed: train_lab(LAB, seed)
