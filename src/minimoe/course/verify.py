"""Verifying the breaks: is every break reliable, on every seed the course uses?

In a scratch copy of src/, tests/ and labs/ (the checkout itself is never touched, so Ctrl-C is
harmless), for every break in the catalog:

  1. pristine: every detector passes, on every seed;
  2. break on (through the same switch code learners use): each of its own detectors fails on
     every seed; every other detector is run once (first seed) to fill the kill matrix;
  3. break off: the target file is byte-identical to the pristine one, and its own detectors
     pass again.

The kill matrix (breaks x detectors) shows which detectors each break turns red. Any failure
of 1-3 is reported and makes the command exit non-zero; CI runs it.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .catalog import Break
from .runner import Outcome, run_detectors
from .switch import scratch_copy, status, switch_off, switch_on


@dataclass
class Report:
    seeds: list[int]
    detectors: list[str]
    failures: list[str] = field(default_factory=list)
    own_red: dict[str, dict[str, int]] = field(default_factory=dict)  # break -> detector -> red seeds
    matrix: dict[str, dict[str, bool]] = field(default_factory=dict)  # break -> detector -> red (first seed)
    slowest: dict[str, float] = field(default_factory=dict)  # detector -> max seconds
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def _track(report: Report, outcomes: list[Outcome]) -> None:
    for o in outcomes:
        report.slowest[o.detector] = max(report.slowest.get(o.detector, 0.0), o.seconds)


def verify(root: Path, catalog: dict[str, Break], breaks: list[Break], seeds: list[int], workers: int = 2,
           echo=print) -> Report:
    t0 = time.perf_counter()
    detectors = sorted({d for b in catalog.values() for d in b.detectors})
    report = Report(seeds, detectors)
    with tempfile.TemporaryDirectory(prefix="minimoe-verify-") as tmp:
        copy = Path(tmp)
        scratch_copy(root, copy)
        for b in catalog.values():
            if status(b, copy) == "on":
                echo(f"note: {b.id} is on in this checkout; verifying with it switched off in the scratch copy")
                switch_off(b, copy)
        pristine = {b.target: (copy / b.target).read_bytes() for b in catalog.values()}
        echo(f"pristine: {len(detectors)} detectors x {len(seeds)} seeds ...")
        base = run_detectors(copy, detectors, seeds, workers)
        _track(report, base)
        for o in base:
            if not o.passed:
                report.failures.append(f"pristine code: {o.detector} [seed {o.seed}] fails:\n{o.message}")
        first = f"[seed{seeds[0]}]"
        for b in breaks:
            switch_on(b, copy)
            others = [d + first for d in detectors if d not in b.detectors]
            outcomes = run_detectors(copy, list(b.detectors) + others, seeds, workers)
            _track(report, outcomes)
            report.own_red[b.id] = {d: sum(1 for o in outcomes if o.detector == d and not o.passed)
                                    for d in b.detectors}
            report.matrix[b.id] = {o.detector: not o.passed for o in outcomes if o.seed == seeds[0]}
            for d, red in report.own_red[b.id].items():
                if red < len(seeds):
                    green = sorted(o.seed for o in outcomes if o.detector == d and o.passed)
                    report.failures.append(f"{b.id}: detector {d} stays green with the break on (seeds {green})")
            byte_identical = switch_off(b, copy)
            if (copy / b.target).read_bytes() != pristine[b.target] or not byte_identical:
                report.failures.append(f"{b.id}: {b.target} is not byte-identical after `off`")
            after = run_detectors(copy, [d + first for d in b.detectors], seeds[:1], workers=1)
            for o in after:
                if not o.passed:
                    report.failures.append(f"{b.id}: detector {o.detector} still fails after `off`")
            own = ", ".join(f"{d.split('::')[-1]} red {n}/{len(seeds)}" for d, n in report.own_red[b.id].items())
            echo(f"{b.id}: {own}")
    report.seconds = time.perf_counter() - t0
    return report


def kill_matrix(report: Report, breaks: list[Break]) -> str:
    dets = report.detectors
    cols = [f"D{i + 1}" for i in range(len(dets))]
    lines = ["kill matrix (rows: breaks; X = the detector is red with the break on, seed "
             f"{report.seeds[0]}; * = one of the break's own detectors)",
             "break   " + " ".join(f"{c:>3}" for c in cols)]
    for b in breaks:
        row = report.matrix.get(b.id, {})
        cells = []
        for d in dets:
            mark = "X" if row.get(d) else "."
            cells.append(f"{mark + ('*' if d in b.detectors else ''):>3}")
        lines.append(f"{b.id:<7} " + " ".join(cells))
    lines.append("")
    for c, d in zip(cols, dets):
        lines.append(f"{c:>3}  {d}  (slowest {report.slowest.get(d, 0):.1f} s)")
    return "\n".join(lines)


def save(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.__dict__, indent=2, default=list), encoding="utf-8")
