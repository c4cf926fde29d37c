"""Shared, seeded fixtures. Tests pin torch to one thread so results do not depend on the machine."""

from __future__ import annotations

import os

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def corpus():
    from minimoe.data import load_dataset

    return load_dataset("", context=64)


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory):
    """Dense-baseline cache in a temp folder, so tests never read a stale cache."""
    os.environ["MINIMOE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
