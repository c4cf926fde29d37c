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
    detectors: [tests/phaseNN/test_x.py::test_y, ...]   must go red with the break on
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
TEXT_FIELDS = ("title", "concept", "symptom", "hidden_cause", "fix", "seen_in")


def repo_root(start: Path | None = None) -> Path:
    """The folder holding labs/ and src/minimoe/ (the current folder or one above it)."""
    here = (start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if (p / "labs").is_dir() and (p / "src" / "minimoe").is_dir():
            return p
    raise CourseError("run this inside the minimoe folder (the one with labs/ and src/minimoe/)")


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
    hints = d.get("hints")
    if not isinstance(hints, list) or len(hints) != 3:
        raise CourseError(f"{where}: field 'hints' must be a list of exactly three rungs")
    hints = tuple(_text({"hint": h}, "hint", f"{where} (hint {i + 1})") for i, h in enumerate(hints))
    lab = d.get("lab")
    if lab is not None and not (isinstance(lab, str) and (root / lab).is_file()):
        raise CourseError(f"{where}: field 'lab': {lab} does not exist")
    return Break(bid, d["phase"], text, target, mut["old"], mut["new"], tuple(dets), hints, lab, path)


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
