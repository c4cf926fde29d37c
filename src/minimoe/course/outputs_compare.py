"""Comparing a saved lab output with a fresh run of it: exactly, or number by number within a tolerance.

On the machine that recorded a phase's outputs (the same numerics fingerprint, numerics.py) a fresh run
gives the same bits, and `just docs-outputs --check` compares the text exactly. On a machine whose float
arithmetic differs, training turns last-bit differences into other counts, so each number is compared
within the tolerance its output states in outputs.yaml:

    tolerance: {rel: 0.05, abs: 0.002, counts: 2}    every number: |a - b| <= rel * max(|a|, |b|) + abs,
                                                      or + counts for a whole number (dead experts, tokens)
    tolerance: {rel: 0.05, "^step=": {rel: 1, counts: 60, words: true}}
                                                      lines matching a regex get their own; `words: true`
                                                      lets their words differ too (the worst layer's name
                                                      in a step line, or "-" where a number was: such a
                                                      line's numbers are then not compared), and a
                                                      differing number of such lines

An output that states none is compared with DEFAULT. The text around the numbers must match (spacing
aside), line for line. Then the phase's claim tests (tests/course/test_claims_phaseNN.py) run on the
fresh outputs ($MINIMOE_FRESH_OUTPUTS, read by outputs_read.read_output), so the sentences around the
blocks are checked against what this machine computed, not only against the recorded numbers.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .catalog import CourseError
from .outputs_read import FRESH_ENV

NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@dataclass(frozen=True)
class Rule:
    rel: float = 0.0
    abs: float = 0.0  # slack for a number with a decimal point (a loss, a share)
    counts: float = 0.0  # slack for a whole number (a count of experts or tokens); default: abs
    words: bool = False  # the line's words may differ too (and how many such lines there are)

    def slack(self, a: str, b: str) -> float:
        return (self.counts or self.abs) if not any(c in a + b for c in ".eE") else self.abs

    def allows(self, a: str, b: str) -> bool:
        x, y = float(a), float(b)
        return abs(x - y) <= self.rel * max(abs(x), abs(y)) + self.slack(a, b)

    def relative_part(self, a: str, b: str) -> float:
        """|a - b| / max(|a|, |b|) where the absolute slack alone would not have allowed it, else 0."""
        x, y = float(a), float(b)
        return abs(x - y) / max(abs(x), abs(y)) if abs(x - y) > self.slack(a, b) else 0.0


EXACT = Rule()
DEFAULT = Rule(rel=0.05, abs=0.001)


@dataclass(frozen=True)
class Tolerance:
    base: Rule = DEFAULT
    lines: tuple[tuple[re.Pattern, Rule], ...] = ()

    def rule(self, line: str) -> Rule:
        return next((r for pattern, r in self.lines if pattern.search(line)), self.base)

    @property
    def widest(self) -> float:
        return max([self.base.rel] + [r.rel for _, r in self.lines])


def _rule(d, where: str) -> Rule:
    if isinstance(d, (int, float)) and not isinstance(d, bool):
        return Rule(rel=float(d))
    if not isinstance(d, dict) or set(d) - {"rel", "abs", "counts", "words"}:
        raise CourseError(f"{where}: a tolerance is a number (relative) or {{rel: R, abs: A, counts: C, words: true}}")
    try:
        return Rule(float(d.get("rel", 0)), float(d.get("abs", 0)), float(d.get("counts", 0)),
                    bool(d.get("words", False)))
    except (TypeError, ValueError):
        raise CourseError(f"{where}: rel and abs must be numbers") from None


def parse_tolerance(d, where: str) -> Tolerance:
    """The `tolerance:` of an outputs.yaml entry (absent: DEFAULT)."""
    if d is None:
        return Tolerance()
    if not isinstance(d, dict):
        return Tolerance(_rule(d, where))
    base = {k: v for k, v in d.items() if k in ("rel", "abs", "counts", "words")}
    lines = []
    for pattern, r in ((k, v) for k, v in d.items() if k not in base):
        try:
            lines.append((re.compile(pattern), _rule(r, f"{where}, lines {pattern!r}")))
        except re.error as e:
            raise CourseError(f"{where}: {pattern!r} is not a regular expression ({e})") from None
    return Tolerance(_rule(base, where) if base else DEFAULT, tuple(lines))


@dataclass
class Comparison:
    """What comparing one output found: the differences beyond tolerance, and how close the rest came."""
    problems: list[str] = field(default_factory=list)
    numbers: int = 0  # numbers compared
    worst: float = 0.0  # the largest relative difference allowed (beyond the absolute slack) among its numbers
    worst_at: str = ""


def _shape(line: str) -> str:
    """A line's words with its numbers taken out and its spacing ignored (a number's width moves the
    columns after it: `( 9)` and `(21)` have the same shape)."""
    return re.sub(r"\s+", "", NUMBER_RE.sub("#", line))


def compare(saved: str, fresh: str, tol: Tolerance | Rule) -> Comparison:
    """Compare two texts line by line; with EXACT (a Rule) any difference is one."""
    out = Comparison()
    if isinstance(tol, Rule):
        tol = Tolerance(tol)
    a, b = saved.splitlines(), fresh.splitlines()
    loose = [p for p, r in tol.lines if r.words]  # such lines are paired among themselves, in order

    def split(lines):
        return ([ln for ln in lines if not any(p.search(ln) for p in loose)],
                [ln for ln in lines if any(p.search(ln) for p in loose)])

    (a_keep, a_loose), (b_keep, b_loose) = split(a), split(b)
    if len(a_keep) != len(b_keep):
        out.problems.append(f"{len(a_keep)} lines vs {len(b_keep)} lines")
    pairs = list(zip(a_keep, b_keep)) + list(zip(a_loose, b_loose))
    for x, y in pairs:
        if x == y:
            out.numbers += len(NUMBER_RE.findall(x))
            continue
        rule = tol.rule(y)
        nx, ny = NUMBER_RE.findall(x), NUMBER_RE.findall(y)
        if rule.words and len(nx) != len(ny):
            continue  # a word where a number was ("-" for no such step): the line's numbers are not paired
        if rule == EXACT or len(nx) != len(ny) or (_shape(x) != _shape(y) and not rule.words):
            out.problems.append(f"page: {x}\nrun:  {y}")
            continue
        bad = [(p, q) for p, q in zip(nx, ny) if not rule.allows(p, q)]
        out.numbers += len(nx)
        if bad:
            p, q = bad[0]
            out.problems.append(f"page: {x}\nrun:  {y}\n({p} vs {q}: beyond rel {rule.rel:g}, abs {rule.abs:g}, "
                                f"counts {rule.counts or rule.abs:g})")
            continue
        for p, q in zip(nx, ny):
            d = rule.relative_part(p, q)
            if d > out.worst:
                out.worst, out.worst_at = d, f"{p} vs {q} in: {y.strip()[:100]}"
    return out


def run_claims(root: Path, phase: str, fresh_dir: Path) -> list[str]:
    """Run the phase's claim tests with its fresh outputs in place of the saved ones; the failures, if any."""
    test = root / "tests" / "course" / f"test_claims_phase{phase}.py"
    if not test.is_file():
        return []
    path = os.pathsep.join(filter(None, [str(root / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, FRESH_ENV: str(fresh_dir), "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(test), "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-rf", "--no-header"], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode == 0:
        return []
    lines = proc.stdout.splitlines()
    failed = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))] or lines[-5:]
    return [f"phase {phase}: a claim test fails on the fresh outputs (a sentence the run here does not bear out): {f}"
            for f in failed]
