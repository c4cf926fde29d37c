"""Phase 42's lab settings and its two-rank job, shared by its tests.

labs/phase-42-expert-parallelism/lab.yaml: E=8 experts, top-2, expert width 16, 16 sequences of 64
tokens. The tests start 2 ranks themselves (gloo on 127.0.0.1, a free port, a time limit:
parallel.spawn_local), once per test session for every seed they run on, and compare what each rank
measured with the same seed trained in one process.
"""

import pytest

from minimoe.experiments import lab_config
from minimoe.experiments.expert_parallel import one_process, reference_logits, run_ranks

LAB = lab_config(42).replace(train={"eval_tokens": 256})
STEPS = 20  # a short run: the ranks must agree with one process at every step
RANKS = 2


@pytest.fixture(scope="session")
def two_ranks(request):
    """two_ranks(seed) -> [rank 0's results, rank 1's] (experiments/expert_parallel.py's rank_job): the
    2-rank job runs once, for every seed that the session's tests of this job run on (not the seeds of
    other phases' tests in the same session), the first time a test asks."""
    job = {}

    def get(seed: int) -> list[dict]:
        if seed not in job:
            seeds = sorted({i.callspec.params["seed"] for i in request.session.items  # the tests of this job
                            if "two_ranks" in getattr(i, "fixturenames", ())
                            and "seed" in getattr(getattr(i, "callspec", None), "params", {})} | {seed})
            ranks = run_ranks(LAB, RANKS, seeds, STEPS, timeout=60 + 30 * len(seeds))
            job.update({s: [r[s] for r in ranks] for s in seeds})
        return job[seed]

    return get


@pytest.fixture(scope="session")
def one_rank_run():
    """one_rank_run(seed) -> the same seed trained in one process (RunResult), once per session."""
    runs = {}
    return lambda seed: runs.setdefault(seed, one_process(LAB, seed, STEPS))


@pytest.fixture(scope="session")
def one_rank_logits():
    runs = {}
    return lambda seed: runs.setdefault(seed, reference_logits(LAB, seed))
