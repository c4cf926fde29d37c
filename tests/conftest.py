"""Shared, seeded fixtures. Tests pin torch to one thread so results do not depend on the machine."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)


def detector_seeds() -> list[int]:
    """Seeds the detectors run on: $MINIMOE_SEEDS (e.g. "0,1,2"), default 0. The verifier sets it."""
    raw = os.environ.get("MINIMOE_SEEDS", "0")
    try:
        return [int(s) for s in raw.split(",") if s.strip()]
    except ValueError:
        raise pytest.UsageError(f"MINIMOE_SEEDS={raw!r}: give whole numbers separated by commas, e.g. 0,1,2") from None


def pytest_generate_tests(metafunc):
    """A test that asks for `seed` runs once per detector seed; its id ends in [seedN]."""
    if "seed" in metafunc.fixturenames:
        seeds = detector_seeds()
        metafunc.parametrize("seed", seeds, ids=[f"seed{s}" for s in seeds])


def pytest_collection_modifyitems(items):
    for item in items:
        if "/phase" in item.nodeid.split("::")[0] and "tests/core" not in item.nodeid:
            item.add_marker(pytest.mark.detector)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def corpus():
    from minimoe.data import load_dataset

    return load_dataset("", context=64)


@pytest.fixture(scope="session")
def train_lab(corpus):
    """train_lab(cfg, seed) -> the RunResult of the lab model `cfg` trained on `seed` (one thread, no
    baseline, no files), trained once per test session: every detector that asks for the same model
    and seed shares one run (phases 38 and 39 share theirs)."""
    from minimoe.train import train

    runs = {}

    def run(cfg, seed: int):
        key = (repr(cfg), seed)
        if key not in runs:
            runs[key] = train(cfg.replace(train={"seed": seed, "threads": 1, "baseline": False, "out": ""}), corpus)
        return runs[key]

    return run


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory):
    """Caches (dense baselines, trained lab models) in a temp folder: tests never read a stale cache, and
    never write into the checkout's .minimoe/cache."""
    os.environ["MINIMOE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
