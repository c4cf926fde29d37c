"""Phase 41's lab settings, shared by its tests: the model the lab pages train.

labs/phase-41-capacity-and-token-dropping/lab.yaml: E=4 experts, top-2, expert width 16, a capacity
factor C = 1.0 (each expert takes at most ceil(C * T*K / E) assignments per batch), the position drop
policy, 300 steps of 16 x 64 tokens. Most of the tests need no training: they build the lab's MoE layer,
or call its capacity step on routings drawn from the seed, and compare exact counts.
"""

import pytest
import torch

from minimoe.experiments import lab_config
from minimoe.moe_block import MoEBlock

LAB = lab_config(41)


def lab_block(seed: int, **moe) -> MoEBlock:
    """The lab's MoE layer (one of its blocks), its weights drawn from `seed`; `moe` changes its settings."""
    torch.manual_seed(seed)
    return MoEBlock(LAB.replace(model={"vocab_size": 8}, moe=moe))


@pytest.fixture(scope="session")
def lab_run(train_lab):
    """lab_run(seed) -> the trained RunResult for that seed (trained once per session)."""
    return lambda seed: train_lab(LAB, seed)
