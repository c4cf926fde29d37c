"""The break catalog: one YAML file per break, in its phase's folder (labs/phase-NN-*/breaks/NN-MM.yaml).

Everything about a break comes from its one file: the CLI listing, the lab page's hint boxes, the
grader's checks and the verification run. A file is validated when loaded; a malformed one is
refused with a message naming the file and the field.

Schema (text fields are {en: ..., es: ...}):

    id: "36-01"                      phase-number, dash, two digits
    phase: 36
    title, concept: text
    target: src/minimoe/loss.py      the file the break edits (inside src/minimoe/)
    mutation: {old: "...", new: "..."}   one line's content before and after; `old` must occur
                                     exactly once in the pristine target
    detectors: [tests/phaseNN/test_x.py::test_y, ...]   the graders' tests: red with the break on, on
                                     every verify seed (labs/seeds.yaml); a subset of `red`
    red: [tests/core/test_a.py::test_b, tests/phaseNN/...]   every learner-facing test (tests/core/,
                                     tests/phaseNN/; no [seedN] suffix) that goes red with the break on:
                                     `just verify-breaks` runs the whole learner-facing suite and fails
                                     on a red test not listed here, and on a listed one that stays green
    measure:                         the symptom as the phase's hunt shows it
      run: moe-train --steps 300     one of the phase's hunt commands (syllabus.yaml, hunt.run)
      name: mean_cv                  the column or field of its output; the quantity `test` records
      test: tests/phaseNN/...::test_y    a learner-facing test that records `name` (tests/conftest.py's
                                     `observe`), seed by seed
      pristine: [lo, hi]             the range it spans over the verify seeds without the break ...
      broken: [lo, hi]               ... and with it; the two must not overlap
    symptom, hidden_cause, fix, seen_in: text
    hints: [text, text, text]        the three-rung ladder, vaguest first
    lab: labs/phase-NN-*/NN-MM-*.md  the lab page (optional)
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from .textfiles import CourseError, safe_yaml

LANGS = ("en", "es")
ID_RE = re.compile(r"^(\d{2})-(\d{2})$")
LEARNER_TEST_RE = re.compile(r"^tests/(core|phase\d+)/[\w/]+\.py::")  # the suite a learner can run
SEED_SUFFIX_RE = re.compile(r"(\[seed\d+\]|-seed\d+\])$")
TEXT_FIELDS = ("title", "concept", "symptom", "hidden_cause", "fix", "seen_in")


def repo_root(start: Path | None = None) -> Path:
    """The folder holding labs/ and src/minimoe/ (the current folder or one above it)."""
    here = (start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if (p / "labs").is_dir() and (p / "src" / "minimoe").is_dir():
            return p
    raise CourseError("run this inside the minimoe folder (the one with labs/ and src/minimoe/)")


@dataclass(frozen=True)
class Measure:
    """A break's symptom as the hunt shows it, and the ranges it spans without and with the break."""

    run: str  # a hunt command of the phase (syllabus.yaml)
    name: str  # what its output calls the quantity; the name `test` records it under
    test: str  # the learner-facing test that records it
    pristine: tuple[float, float]
    broken: tuple[float, float]


@dataclass(frozen=True)
class Break:
    id: str
    phase: int
    text: dict  # field -> {en, es}
    target: str
    old: str
    new: str
    detectors: tuple[str, ...]
    hints: tuple[dict, ...]
    lab: str | None
    path: Path
    red: tuple[str, ...] = ()
    measure: Measure | None = None

    def t(self, field: str, lang: str = "en") -> str:
        return self.text[field].get(lang) or self.text[field]["en"]

    def hint(self, rung: int, lang: str = "en") -> str:
        h = self.hints[rung - 1]
        return h.get(lang) or h["en"]


def _text(d: dict, field: str, where: str) -> dict:
    v = d.get(field)
    if not isinstance(v, dict) or not all(isinstance(v.get(lang), str) and v[lang].strip() for lang in LANGS):
        raise CourseError(f"{where}: field '{field}' must have non-empty 'en' and 'es' text")
    return {lang: v[lang].strip() for lang in LANGS}


def parse_break(d, path: Path, root: Path) -> Break:
    where = f"break file {path}"
    if not isinstance(d, dict):
        raise CourseError(f"{where}: expected a mapping of fields (id, phase, title, ...)")
    bid = str(d.get("id", ""))
    m = ID_RE.match(bid)
    if not m:
        raise CourseError(f"{where}: field 'id' must look like 36-01, got {bid!r}")
    if d.get("phase") != int(m.group(1)):
        raise CourseError(f"{where}: field 'phase' must be {int(m.group(1))} (the id's first number)")
    if path.stem != bid:
        raise CourseError(f"{where}: the file must be named {bid}.yaml")
    text = {f: _text(d, f, where) for f in TEXT_FIELDS}
    target = d.get("target")
    if not isinstance(target, str) or not target.startswith("src/minimoe/") or ".." in target:
        raise CourseError(f"{where}: field 'target' must be a path inside src/minimoe/")
    if not (root / target).is_file():
        raise CourseError(f"{where}: field 'target': {target} does not exist")
    mut = d.get("mutation")
    if not isinstance(mut, dict) or not all(isinstance(mut.get(k), str) and mut[k] for k in ("old", "new")):
        raise CourseError(f"{where}: field 'mutation' needs non-empty 'old' and 'new' strings")
    if "\n" in mut["old"] or "\n" in mut["new"] or mut["old"] in mut["new"] or mut["new"] in mut["old"]:
        raise CourseError(f"{where}: field 'mutation': old and new must be single-line strings, "
                          "neither inside the other")
    dets = d.get("detectors")
    if not isinstance(dets, list) or not dets or not all(isinstance(x, str) and "::" in x for x in dets):
        raise CourseError(f"{where}: field 'detectors' must list test ids like tests/phase36/test_x.py::test_y")
    for x in dets:
        if not x.startswith(f"tests/phase{m.group(1)}/") or not (root / x.split("::")[0]).is_file():
            raise CourseError(f"{where}: field 'detectors': {x} is not a test file under tests/phase{m.group(1)}/")
    red = d.get("red")
    if not isinstance(red, list) or not all(isinstance(x, str) and "::" in x for x in red):
        raise CourseError(f"{where}: field 'red' must list every learner-facing test the break turns red "
                          "(tests/core/test_x.py::test_y, tests/phaseNN/test_x.py::test_y)")
    for x in red:
        if not LEARNER_TEST_RE.match(x) or SEED_SUFFIX_RE.search(x) or not (root / x.split("::")[0]).is_file():
            raise CourseError(f"{where}: field 'red': {x} is not a test of tests/core/ or tests/phaseNN/ "
                              "(write it without its [seedN] suffix)")
    missing = [x for x in dets if x not in red]
    if missing:
        raise CourseError(f"{where}: field 'red' must hold every detector; it misses {', '.join(missing)}")
    measure = parse_measure(d.get("measure"), where, root, d["phase"])
    hints = d.get("hints")
    if not isinstance(hints, list) or len(hints) != 3:
        raise CourseError(f"{where}: field 'hints' must be a list of exactly three rungs")
    hints = tuple(_text({"hint": h}, "hint", f"{where} (hint {i + 1})") for i, h in enumerate(hints))
    lab = d.get("lab")
    if lab is not None and not (isinstance(lab, str) and (root / lab).is_file()):
        raise CourseError(f"{where}: field 'lab': {lab} does not exist")
    return Break(bid, d["phase"], text, target, mut["old"], mut["new"], tuple(dets), hints, lab, path,
                 tuple(red), measure)


def _range(v, field: str, where: str) -> tuple[float, float]:
    ok = isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                     for x in v) and v[0] <= v[1]
    if not ok:
        raise CourseError(f"{where}: field 'measure.{field}' must be a range [low, high] of two numbers")
    return float(v[0]), float(v[1])


def hunt_runs(root: Path, phase: int) -> list[str]:
    """The commands a phase's hunt starts with (labs/phase-NN-*/syllabus.yaml, hunt.run)."""
    path = phase_dir(root, phase) / "syllabus.yaml"
    data = safe_yaml(path, "syllabus file") if path.is_file() else None
    runs = (data or {}).get("hunt", {}).get("run") if isinstance(data, dict) else None
    if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
        raise CourseError(f"{path}: needs hunt.run, the list of commands a hunt starts with")
    return runs


def parse_measure(m, where: str, root: Path, phase: int) -> Measure:
    if not isinstance(m, dict) or not all(isinstance(m.get(k), str) and m[k] for k in ("run", "name", "test")):
        raise CourseError(f"{where}: field 'measure' needs run (a hunt command), name (what its output shows), "
                          "test (the test that records it), pristine and broken (two ranges)")
    runs = hunt_runs(root, phase)
    if m["run"] not in runs:
        raise CourseError(f"{where}: field 'measure.run' must be one of the phase's hunt commands "
                          f"(syllabus.yaml, hunt.run): {'; '.join(runs)}")
    test = m["test"]
    if "::" not in test or not LEARNER_TEST_RE.match(test) or SEED_SUFFIX_RE.search(test) \
            or not (root / test.split("::")[0]).is_file():
        raise CourseError(f"{where}: field 'measure.test': {test} is not a test of tests/core/ or tests/phaseNN/")
    pristine, broken = _range(m.get("pristine"), "pristine", where), _range(m.get("broken"), "broken", where)
    if not (pristine[1] < broken[0] or broken[1] < pristine[0]):
        raise CourseError(f"{where}: field 'measure': the pristine range {list(pristine)} and the broken range "
                          f"{list(broken)} overlap, so the measure does not tell them apart")
    return Measure(m["run"], m["name"], test, pristine, broken)


def load_catalog(root: Path | None = None) -> dict[str, Break]:
    """Every break in labs/*/breaks/, validated, keyed and sorted by id."""
    root = root or repo_root()
    found = {}
    for path in sorted(root.glob("labs/phase-*/breaks/*.yaml")):
        b = parse_break(safe_yaml(path, "break file"), path.relative_to(root), root)
        if b.id in found:
            raise CourseError(f"break file {path}: id {b.id} is also used by {found[b.id].path}")
        found[b.id] = b
    return dict(sorted(found.items()))


def lookup(catalog: dict[str, Break], bid: str) -> Break:
    if bid in catalog:
        return catalog[bid]
    close = difflib.get_close_matches(bid, list(catalog), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise CourseError(f"unknown break id {bid!r}; {hint}`just breaks` lists them")


def phase_dir(root: Path, phase: int) -> Path:
    dirs = sorted(root.glob(f"labs/phase-{phase}-*"))
    if not dirs:
        raise CourseError(f"no lab folder for phase {phase} (labs/phase-{phase}-*)")
    return dirs[0]


SEEDS = Path("labs") / "seeds.yaml"


def course_seeds(root: Path) -> dict[str, list[int]]:
    """The seeds of the multi-seed checks (labs/seeds.yaml): 'verify' and 'grade', grade within verify."""
    data = safe_yaml(root / SEEDS, "seeds file")
    ok = isinstance(data, dict) and all(
        isinstance(data.get(k), list) and data[k] and all(isinstance(s, int) and s >= 0 for s in data[k])
        for k in ("verify", "grade"))
    if not ok:
        raise CourseError(f"seeds file {SEEDS}: needs 'verify' and 'grade', each a list of seeds (whole numbers >= 0)")
    if not set(data["grade"]) <= set(data["verify"]):
        raise CourseError(f"seeds file {SEEDS}: every 'grade' seed must also be a 'verify' seed")
    return {"verify": list(data["verify"]), "grade": list(data["grade"])}
