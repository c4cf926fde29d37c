"""Shared, seeded fixtures. Tests pin torch to one thread so results do not depend on the machine."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

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


# the session fixtures that train a lab model (or start phase 42's ranks): a test that asks for one is a `lab` test
LAB_FIXTURES = {"train_lab", "two_ranks", "one_rank_run"}
COURSE_CHECKOUT = (Path(__file__).parent / "course").is_dir()  # a handout holds tests/core and its phases only


def _labs_left_out(config) -> bool:
    """In the course's checkout, `just test` with no path is the everyday suite: it leaves out the lab tests
    (seconds each, a lab model trained first). Naming a folder or file runs them (just test tests/phase36),
    so does `-m lab`; in a handout, whose suite is its own phases, `just test` runs them all."""
    return (COURSE_CHECKOUT and config.args_source == pytest.Config.ArgsSource.TESTPATHS
            and "lab" not in (config.getoption("markexpr") or ""))


def pytest_terminal_summary(terminalreporter, config):
    if _labs_left_out(config):
        terminalreporter.write_line("the lab tests (a lab model trained first) were left out: name a phase to run "
                                    "its tests, e.g. just test tests/phase36, or all of them: just test -m lab")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    grouped = bool(config.getoption("loadgroup", default=False))  # set by xdist under --dist loadgroup
    for item in items:
        path = item.nodeid.split("::")[0]
        if "/phase" in path and "tests/core" not in item.nodeid:
            item.add_marker(pytest.mark.detector)
            # one phase's tests share its session fixtures (the lab models, phase 42's 2-rank job): under
            # `pytest -n 2 --dist loadgroup` they run on one worker, so those are built once, not twice
            if grouped:
                item.add_marker(pytest.mark.xdist_group(path.split("/")[1]))
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)
    if _labs_left_out(config):
        lab = [i for i in items if i.get_closest_marker("lab")]
        if lab:
            items[:] = [i for i in items if not i.get_closest_marker("lab")]
            config.hook.pytest_deselected(items=lab)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def observe(record_property):
    """observe(name, value, limit=None, passes=None) -> value: keep a quantity the test measured.

    The quantity a test asserts on is given with its limit and the side that passes ("<=" or ">="):
    run over many seeds, the values say how far from the limit the test stays. Nothing in a test's
    outcome depends on what it observes."""
    def keep(name: str, value: float, limit: float | None = None, passes: str | None = None) -> float:
        record_property(name, float(value))
        if limit is not None:
            record_property("checked", {"name": name, "limit": float(limit), "passes": passes})
        return value

    return keep


@pytest.fixture(scope="session")
def corpus():
    from minimoe.data import load_dataset

    return load_dataset("", context=64)


def _saved_runs() -> Path | None:
    """$MINIMOE_RUNS (a folder) keeps the lab models trained by one test session for the next ones."""
    raw = os.environ.get("MINIMOE_RUNS")
    return Path(raw) if raw else None


def _run_key(cfg, seed: int, vocab: str) -> str:
    from minimoe.files import source_fingerprint

    # compress.py and params.py cannot change a training run: train() calls neither
    code = source_fingerprint(exclude=("compress.py", "params.py"))
    blob = json.dumps([cfg.to_dict(), seed, vocab, code, torch.__version__], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@pytest.fixture(scope="session")
def train_lab(corpus):
    """train_lab(cfg, seed) -> the RunResult of the lab model `cfg` trained on `seed` (one thread, no
    baseline, no files), trained once per test session: every detector that asks for the same model
    and seed shares one run (phases 38 and 39 share theirs). With $MINIMOE_RUNS set, a run is saved
    there and read back by later sessions of the same code (its history is not kept)."""
    from minimoe.checkpoint import CheckpointError, save_checkpoint
    from minimoe.train import train

    runs = {}

    def run(cfg, seed: int):
        key = (repr(cfg), seed)
        if key in runs:
            return runs[key]
        cfg = cfg.replace(train={"seed": seed, "threads": 1, "baseline": False, "out": ""})
        saved = _saved_runs()
        path = saved / f"run-{_run_key(cfg, seed, corpus.vocab)}.pt" if saved else None
        if path is not None and path.is_file():
            try:
                runs[key] = train(cfg.replace(train={"steps": 0, "load": str(path)}), corpus)
                return runs[key]
            except CheckpointError:
                pass  # a damaged file: train again
        runs[key] = train(cfg, corpus)
        if path is not None:
            save_checkpoint(str(path), runs[key].model, runs[key].cfg, corpus.vocab, cfg.train.steps)
        return runs[key]

    return run


@pytest.fixture(autouse=True, scope="session")
def _cache_dir(tmp_path_factory):
    """Caches (dense baselines, trained lab models) in a temp folder: tests never read a stale cache, and
    never write into the checkout's .minimoe/cache."""
    os.environ["MINIMOE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
