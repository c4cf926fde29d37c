"""Run detector tests in a subprocess and collect their outcomes per seed.

Detector tests take a `seed` fixture; tests/conftest.py parametrizes it from $MINIMOE_SEEDS
(default "0"), so one pytest run covers every seed and the node ids read
`tests/phase36/test_x.py::test_y[seed3]`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SEED_RE = re.compile(r"\[seed(\d+)\]$")


@dataclass
class Outcome:
    detector: str  # node id without the seed
    seed: int
    passed: bool
    seconds: float
    message: str


def run_detectors(root: Path, ids: list[str], seeds: list[int], workers: int = 2,
                  timeout: float = 1800) -> list[Outcome]:
    """Run the given detector ids for every seed in the tree at root (its own src/ on the path)."""
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.json"
        env = {**os.environ, "MINIMOE_SEEDS": ",".join(map(str, seeds)), "MINIMOE_RESULTS": str(results),
               "PYTHONPATH": str(root / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               "MINIMOE_CACHE": str(Path(tmp) / "cache")}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "minimoe.course.results_plugin",
               "-o", "addopts=", "--no-header", "-rN", *(["-n", str(workers)] if workers > 1 else []), *ids]
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        if not results.is_file():
            raise RuntimeError(f"pytest did not run ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        data = json.loads(results.read_text())
    out = []
    for nodeid, r in data["tests"].items():
        m = SEED_RE.search(nodeid)
        seed = int(m.group(1)) if m else seeds[0]
        base = SEED_RE.sub("", nodeid)
        out.append(Outcome(base, seed, r["outcome"] == "passed", r["seconds"], r["message"]))
    asked = {i.split("[")[0] for i in ids}
    missing = [i for i in asked if not any(o.detector == i or o.detector.startswith(i + "[") for o in out)
               and "::" in i]
    if missing:
        raise RuntimeError(f"no result for {', '.join(sorted(missing))}: does the test exist?\n{proc.stdout[-1500:]}")
    return out
