"""Run tests in a subprocess, in a clean environment, and collect their outcomes per seed.

Detector tests take a `seed` fixture; tests/conftest.py parametrizes it from $MINIMOE_SEEDS
(default "0"), so one pytest run covers every seed and the node ids read
`tests/phase36/test_x.py::test_y[seed3]`.

The run sees nothing of the caller's Python or pytest set-up: the environment is built from
scratch (no PYTHONPATH but the tree's own src/, no PYTEST_ADDOPTS, PYTEST_PLUGINS or plugin
autoload), bytecode goes to a fresh folder (a forged `__pycache__` is never read), the ini
file's addopts are replaced, and no conftest.py above tests/ is loaded. A detector that did not
run (deselected, missing, crashed) counts as red, with the reason. Each outcome carries what the test
observed (its `record_property` values: see results_plugin.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SEED_RE = re.compile(r"\[seed(\d+)\]$")
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TERM")


@dataclass
class Outcome:
    detector: str  # node id without the seed
    seed: int
    passed: bool
    seconds: float
    message: str
    properties: dict = field(default_factory=dict)  # what the test observed (name -> value)
    skipped: bool = False  # skipped (e.g. needs a GPU): not passed, so never a grader's green; not red either


def clean_env(root: Path, tmp: Path, **extra: str) -> dict[str, str]:
    """An environment for running the course's tests on the tree at root, and nothing else."""
    env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
    env.update({"PYTHONPATH": str(root / "src"), "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPYCACHEPREFIX": str(tmp / "pycache"), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
                "PYTHONHASHSEED": "0", "MINIMOE_CACHE": str(tmp / "cache"), **extra})
    return env


def pytest_command(workers: int, ids: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "minimoe.course.results_plugin",
            *(["-p", "xdist.plugin", "-n", str(workers)] if workers > 1 else []),
            "-o", "addopts=", "--confcutdir", "tests", "--no-header", "-rN", *ids]


def run_detectors(root: Path, ids: list[str], seeds: list[int], workers: int = 2,
                  timeout: float = 1800, options: tuple[str, ...] = (), **env_extra: str) -> list[Outcome]:
    """Run the given test ids for every seed in the tree at root (its own src/ on the path). An id that
    ends in [seedN] runs on that seed only; `options` are more pytest flags, `env_extra` more variables."""
    with tempfile.TemporaryDirectory(prefix="minimoe-run-") as tmp:
        results = Path(tmp) / "results.json"
        env = clean_env(root, Path(tmp), MINIMOE_SEEDS=",".join(map(str, seeds)), MINIMOE_RESULTS=str(results),
                        **env_extra)
        try:
            proc = subprocess.run(pytest_command(workers, [*options, *ids]), cwd=root, env=env, capture_output=True,
                                  text=True, timeout=timeout)
            tail, status = (proc.stdout[-1500:] + proc.stderr[-1500:]).strip(), proc.returncode
        except subprocess.TimeoutExpired:
            tail, status = f"the run took longer than {timeout:.0f} s and was stopped", None
        data = json.loads(results.read_text()) if results.is_file() else {"tests": {}}
    out, seeded = [], set()
    for nodeid, r in data["tests"].items():
        m = SEED_RE.search(nodeid)
        base = SEED_RE.sub("", nodeid)
        if m:
            seeded.add(base)
        out.append(Outcome(base, int(m.group(1)) if m else seeds[0], r["outcome"] == "passed", r["seconds"],
                           r["message"], r.get("properties") or {}, r["outcome"] == "skipped"))
    if status not in (0, None) and out and all(o.passed or o.skipped for o in out):
        # pytest's own exit status, seen from this process, says something failed while the results file says
        # nothing did: the outcomes were written by code in the test process (the package under test) and are
        # not trusted
        out = [Outcome(o.detector, o.seed, False, o.seconds, f"not trusted: the test run ended with exit status "
                       f"{status} although every test reported passing (its outcomes were altered inside the "
                       "test process)") for o in out]
    for i in ids:  # every asked-for test (and seed, where it takes one) has an outcome: one that did not run is red
        m, base = SEED_RE.search(i), SEED_RE.sub("", i)
        mine = [o for o in out if o.detector == base or o.detector.startswith(base + "[")]
        if m:
            wanted = [int(m.group(1))]
        elif not mine or base in seeded:
            wanted = seeds
        else:
            wanted = []  # ran, and takes no seed
        for seed in wanted:
            if not any(o.seed == seed for o in mine):
                out.append(Outcome(base, seed, False, 0.0, f"did not run: {tail[-600:] or 'no output'}"))
    return out


def collect(root: Path, paths: list[str], seeds: list[int], options: tuple[str, ...] = (),
            timeout: float = 600) -> list[str]:
    """The node ids pytest collects under `paths` in the tree at root, seeded tests on the first seed."""
    with tempfile.TemporaryDirectory(prefix="minimoe-collect-") as tmp:
        env = clean_env(root, Path(tmp), MINIMOE_SEEDS=str(seeds[0]))
        cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
               "--confcutdir", "tests", *options, *paths]
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    return [ln.strip() for ln in proc.stdout.splitlines() if "::" in ln and not ln.startswith(" ")]
