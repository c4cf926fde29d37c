"""Verifying the breaks: is every break reliable on every seed the course verifies, is its symptom
visible where the hunt looks, and does the learner-facing suite say no more than its catalog entry?

In a scratch copy of src/, tests/ and labs/ (the checkout itself is never touched, so Ctrl-C is
harmless):

  1. the learner-facing suite is collected: tests/core/ and every tests/phaseNN/, without the slow
     tests (what a handout ships and its `just test` runs);
  2. pristine, in one pytest run: the whole suite on the first seed, and every detector and every
     symptom measure's test on every seed. All green;
  3. each break on (through the same switch code learners use), in one pytest run: the whole suite
     on the first seed, and its detectors and its measure's test on every seed. A red test that its
     entry's `red` list does not declare fails the verification, and so does a declared test that
     stays green; each detector must be red on every seed;
  4. its symptom measure, read from its test on every seed without and with the break: the two
     ranges must not overlap, and must lie inside the ranges its entry states (the message gives
     the measured ones to paste);
  5. break off: the target file must be byte-identical to the pristine one, so every outcome is
     the pristine run's again.

Every detector records the quantity it checks and its limit (tests/conftest.py's `observe`); the
report gives each one's range without and with the break and its worst margin to the limit. Lab
models trained in one run are kept for the next ($MINIMOE_RUNS, keyed by the package's source), so
a break that cannot change training does not train again. The kill matrix (breaks x every test that
goes red) shows what each break turns red.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .catalog import Break
from .runner import SEED_RE, Outcome, collect, run_detectors
from .switch import scratch_copy, status, switch_off, switch_on

SUITE_OPTIONS = ("-m", "not slow")


def learner_suite(root: Path) -> list[str]:
    """The folders of the learner-facing suite: tests/core/ and every tests/phaseNN/."""
    phases = sorted((p for p in (root / "tests").glob("phase*") if p.is_dir()), key=lambda p: int(p.name[5:] or 0))
    return [p.relative_to(root).as_posix() for p in [root / "tests" / "core", *phases] if p.is_dir()]


@dataclass
class Spread:
    """One quantity over the seeds, without and with a break."""

    label: str
    pristine: list[float]
    broken: list[float]
    limit: float | None = None
    passes: str | None = None  # "<=" or ">=": the side of the limit that passes

    def margins(self) -> tuple[float, float] | None:
        """Worst distance to the limit on the passing side (pristine) and on the failing side (broken)."""
        if self.limit is None or not self.pristine or not self.broken:
            return None
        if self.passes == ">=":
            return min(self.pristine) - self.limit, self.limit - max(self.broken)
        return self.limit - max(self.pristine), min(self.broken) - self.limit

    def gap(self) -> float | None:
        """The distance between the two ranges (negative: they overlap)."""
        if not self.pristine or not self.broken:
            return None
        return max(min(self.broken) - max(self.pristine), min(self.pristine) - max(self.broken))


@dataclass
class Report:
    seeds: list[int]
    suite: list[str] = field(default_factory=list)  # the learner-facing tests, first seed
    failures: list[str] = field(default_factory=list)
    matrix: dict[str, list[str]] = field(default_factory=dict)  # break -> learner tests red on the first seed
    detectors: dict[str, list[Spread]] = field(default_factory=dict)  # break -> one per detector
    measures: dict[str, Spread] = field(default_factory=dict)  # break -> its symptom measure
    slowest: dict[str, float] = field(default_factory=dict)  # test -> max seconds
    times: dict[str, float] = field(default_factory=dict)  # "pristine" or break -> seconds of its run
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _range(values: list[float]) -> str:
    return f"{_fmt(min(values))}..{_fmt(max(values))}" if values else "-"


def _values(outcomes: list[Outcome], test: str, name: str) -> list[float]:
    return [float(o.properties[name]) for o in outcomes if o.detector == test and name in o.properties]


def _checked(outcomes: list[Outcome], test: str) -> dict | None:
    return next((o.properties["checked"] for o in outcomes if o.detector == test and
                 isinstance(o.properties.get("checked"), dict)), None)


def _ids(suite: list[str], tests: list[str], seeds: list[int]) -> list[str]:
    """The whole suite (its seeded tests on the first seed) and `tests` on every other seed too."""
    seeded = {SEED_RE.sub("", i) for i in suite if SEED_RE.search(i)}
    return suite + [f"{t}[seed{s}]" for t in sorted(set(tests) & seeded) for s in seeds[1:]]


def verify(root: Path, catalog: dict[str, Break], breaks: list[Break], seeds: list[int], workers: int = 2,
           echo=print) -> Report:
    t0 = time.perf_counter()
    report = Report(seeds)
    watched = sorted({t for b in breaks for t in (*b.detectors, *([b.measure.test] if b.measure else []))})
    with tempfile.TemporaryDirectory(prefix="minimoe-verify-") as tmp:
        copy = Path(tmp) / "course"
        scratch_copy(root, copy)
        runs = {"MINIMOE_RUNS": str(Path(tmp) / "runs")}
        for b in catalog.values():
            if status(b, copy) == "on":
                echo(f"note: {b.id} is on in this checkout; verifying with it switched off in the scratch copy")
                switch_off(b, copy)
        pristine_bytes = {b.target: (copy / b.target).read_bytes() for b in catalog.values()}
        report.suite = collect(copy, learner_suite(copy), seeds, SUITE_OPTIONS)
        if not report.suite:
            report.failures.append("the learner-facing suite collected no test")
            return report

        def run(tests: list[str], label: str) -> list[Outcome]:
            t1 = time.perf_counter()
            outcomes = run_detectors(copy, _ids(report.suite, tests, seeds), seeds, workers, **runs)
            report.times[label] = time.perf_counter() - t1
            for o in outcomes:
                report.slowest[o.detector] = max(report.slowest.get(o.detector, 0.0), o.seconds)
            return outcomes

        echo(f"pristine: {len(report.suite)} learner-facing tests on seed {seeds[0]}, "
             f"{len(watched)} detectors and measures on {len(seeds)} seeds ...")
        base = run(watched, "pristine")
        for o in base:
            if not o.passed and not o.skipped:
                report.failures.append(f"pristine code: {o.detector} [seed {o.seed}] fails:\n{o.message[-1200:]}")
        for b in breaks:
            switch_on(b, copy)
            mine = [*b.detectors, *([b.measure.test] if b.measure else [])]
            outcomes = run(mine, b.id)
            _judge(report, b, base, outcomes, seeds)
            byte_identical = switch_off(b, copy)
            if (copy / b.target).read_bytes() != pristine_bytes[b.target] or not byte_identical:
                report.failures.append(f"{b.id}: {b.target} is not byte-identical after `off`")
            own = ", ".join(f"{d.split('::')[-1]} red {sum(not o.passed for o in outcomes if o.detector == d)}"
                            f"/{len(seeds)}" for d in b.detectors)
            echo(f"{b.id}: {own}; {len(report.matrix[b.id])} learner-facing tests red "
                 f"({report.times[b.id]:.0f} s)")
    report.seconds = time.perf_counter() - t0
    return report


def _judge(report: Report, b: Break, base: list[Outcome], outcomes: list[Outcome], seeds: list[int]) -> None:
    first = [o for o in outcomes if o.seed == seeds[0]]
    red = sorted({o.detector for o in first if not o.passed and not o.skipped})
    report.matrix[b.id] = red
    for t in red:
        if t not in b.red:
            msg = next(o.message for o in first if o.detector == t and not o.passed)
            report.failures.append(f"{b.id}: {t} goes red with the break on but its entry's `red` does not "
                                   f"declare it:\n{msg[-800:]}")
    for t in b.red:
        if t not in red:
            report.failures.append(f"{b.id}: {t} is declared `red` but stays green with the break on "
                                   f"(seed {seeds[0]})")
    spreads = []
    for d in b.detectors:
        green = sorted(o.seed for o in outcomes if o.detector == d and (o.passed or o.skipped))
        if green:
            report.failures.append(f"{b.id}: detector {d} stays green with the break on (seeds {green})")
        checked = _checked(base, d) or _checked(outcomes, d)
        if checked is None:
            report.failures.append(f"{b.id}: detector {d} records no checked quantity (observe(name, value, "
                                   "limit, passes)), so its margins are unknown")
            continue
        name = checked["name"]
        spreads.append(Spread(f"{d.split('::')[-1]}: {name} {checked['passes']} {_fmt(checked['limit'])}",
                              _values(base, d, name), _values(outcomes, d, name), checked["limit"],
                              checked["passes"]))
    report.detectors[b.id] = spreads
    m = b.measure
    if m is None:
        return
    s = Spread(f"{m.name} (`just {m.run}`)", _values(base, m.test, m.name), _values(outcomes, m.test, m.name))
    report.measures[b.id] = s
    if len(s.pristine) < len(seeds) or len(s.broken) < len(seeds):
        report.failures.append(f"{b.id}: measure {m.name} was recorded on {len(s.pristine)} (pristine) and "
                               f"{len(s.broken)} (broken) of {len(seeds)} seeds by {m.test}")
        return
    if s.gap() <= 0:
        report.failures.append(f"{b.id}: measure {m.name} does not tell the break apart: pristine "
                               f"{_range(s.pristine)}, broken {_range(s.broken)}")
    (plo, phi), (blo, bhi) = m.pristine, m.broken
    if not (plo <= min(s.pristine) and max(s.pristine) <= phi and blo <= min(s.broken) and max(s.broken) <= bhi):
        report.failures.append(
            f"{b.id}: measure {m.name} was measured outside the ranges its entry states "
            f"(pristine {[plo, phi]}, broken {[blo, bhi]}); measured over seeds {seeds}: "
            f"pristine: [{min(s.pristine):.6g}, {max(s.pristine):.6g}], "
            f"broken: [{min(s.broken):.6g}, {max(s.broken):.6g}]")


def margins(report: Report, breaks: list[Break]) -> str:
    """Each detector's and measure's range without and with its break, and the worst margin."""
    lines = [f"ranges over {len(report.seeds)} seeds (pristine | broken) and the worst margin to the limit "
             "(pristine on the passing side, broken on the failing side):"]
    for b in breaks:
        for s in report.detectors.get(b.id, []):
            m = s.margins()
            lines.append(f"  {b.id}  detector {s.label}:  {_range(s.pristine)} | {_range(s.broken)}"
                         + (f"   margins {_fmt(m[0])} | {_fmt(m[1])}" if m else ""))
        s = report.measures.get(b.id)
        if s is not None:
            gap = s.gap()
            lines.append(f"  {b.id}  measure  {s.label}:  {_range(s.pristine)} | {_range(s.broken)}"
                         + (f"   gap {_fmt(gap)}" if gap is not None else ""))
    return "\n".join(lines)


def kill_matrix(report: Report, breaks: list[Break]) -> str:
    tests = sorted({t for b in breaks for t in report.matrix.get(b.id, [])})
    cols = [f"T{i + 1}" for i in range(len(tests))]
    lines = [f"kill matrix over the learner-facing suite ({len(report.suite)} tests; rows: breaks; X = red with "
             f"the break on, seed {report.seeds[0]}; * = one of the break's detectors)",
             "break   " + " ".join(f"{c:>4}" for c in cols)]
    for b in breaks:
        row = set(report.matrix.get(b.id, []))
        cells = [(("X" if t in row else ".") + ("*" if t in b.detectors else "")) for t in tests]
        lines.append(f"{b.id:<7} " + " ".join(f"{c:>4}" for c in cells))
    lines.append("")
    for c, t in zip(cols, tests):
        lines.append(f"{c:>4}  {t}  (slowest {report.slowest.get(t, 0):.1f} s)")
    return "\n".join(lines)


def save(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {**report.__dict__, "detectors": {k: [s.__dict__ for s in v] for k, v in report.detectors.items()},
            "measures": {k: s.__dict__ for k, s in report.measures.items()}}
    path.write_text(json.dumps(blob, indent=2, default=list), encoding="utf-8")
