"""Handouts: the learner's repository in classroom mode (`just handout`).

A handout is a fresh git repository whose first and only commit already carries the break(s), so
the original line exists nowhere in it: not in its history, not in a catalog, not in a page. It
holds what a learner needs to hunt and nothing of the answers:

    src/minimoe/          the package, without the course engine, with the break(s) in
    tests/                the learner-facing suite: tests/core/ and the given phases' detectors
                          (and the phases those import); never tests/course/, the instructor's
    labs/                 each given phase's README and lab 00 (en, es) with their images, and
                          every phase's settings files; never a break page or a break file
    exercise/             the learner tool (exercise_tool.py): hints (encoded until asked for,
                          recorded as opened), notes templates and checks, submission as a bundle
    learners/NAME/        the notes templates (a per-learner handout)
    justfile, README.md   the learner's recipes only; set-up, the exercises, how to submit

Blind handouts name each exercise by a neutral code (X1, X2, ...) and contain no break id, no
break title and no answer text; `check_leaks` searches every file for them (and for the original
lines of the given breaks) before the commit, and refuses to write a handout that leaks.

What was handed out is recorded on the instructor's side only (classroom.py's roster): the
autograder grades exactly that, against the handout's own commit.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..experiments import settings_files
from .catalog import Break, CourseError
from .exercise_tool import encode_rung
from .learners import now
from .notes import notes_path, template
from .switch import status

HERE = Path(__file__).resolve().parent
TOOL = {"exercise_tool.py": "__main__.py", "notes.py": "notes.py", "textfiles.py": "textfiles.py"}
LEARNER_RECIPES = ("default", "setup", "test", "test-slow", "moe-train", "moe-train-ep", "compress", "params",
                   "experiment", "lint", "bench")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".*.tmp", "outputs")
IMAGE_RE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
PHASE_IMPORT_RE = re.compile(r"^\s*(?:from|import)\s+(?:tests\.)?phase(\d+)\b", re.M)
GIT_ID = {"GIT_AUTHOR_NAME": "minimoe handout", "GIT_AUTHOR_EMAIL": "handout@minimoe.invalid",
          "GIT_COMMITTER_NAME": "minimoe handout", "GIT_COMMITTER_EMAIL": "handout@minimoe.invalid",
          "GIT_AUTHOR_DATE": "2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2000-01-01T00:00:00Z"}

LEARNER_JUST = '''
# Show the next rung of an exercise's hint ladder (just hint X1; --lang es)
hint *args:
    {{python}} -m exercise hint "$@"

# Create your notes templates: learners/<name>/phase-NN/notes/breaks.md
new-learner name:
    {{python}} -m exercise new-learner "$1"

# Check your notes: every exercise has a complete record
notes *args:
    {{python}} -m exercise notes "$@"

# Commit your work and pack it as a git bundle to send to your instructor
submit *args:
    {{python}} -m exercise submit "$@"
'''


@dataclass
class Handout:
    id: str
    learner: str | None  # None: one handout for the whole class
    blind: bool
    codes: dict[str, str]  # exercise code -> break id
    phases: list[int]
    commit: str  # the handout's only commit
    repo: str  # its folder, relative to the classroom folder
    bundle: str
    created: str

    def as_dict(self) -> dict:
        return asdict(self)


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ID, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd)}
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise CourseError(f"git {args[0]} failed while building a handout: {proc.stderr.strip()[:300]}")
    return proc.stdout.strip()


def _pristine_package(root: Path, catalog: dict[str, Break], dest: Path) -> None:
    """src/minimoe without the course engine, every break of the checkout switched back off."""
    edited = [b.id for b in catalog.values() if status(b, root) == "edited"]
    if edited:
        raise CourseError(f"the line of break(s) {', '.join(edited)} is edited in this checkout, so its original "
                          "form is unknown; restore it (`just break off --all` says how) and build the handout again")
    shutil.copytree(root / "src" / "minimoe", dest, ignore=shutil.ignore_patterns(
        "__pycache__", "*.pyc", "*.egg-info", ".*.tmp", "course"))
    for b in catalog.values():
        p = dest.parent.parent / b.target
        text = p.read_text(encoding="utf-8")
        if b.new in text and b.old not in text:
            p.write_text(text.replace(b.new, b.old, 1), encoding="utf-8")


def needed_phases(root: Path, phases: set[int]) -> set[int]:
    """The given phases and every phase their tests import (phase 39's detectors use phase 38's model)."""
    todo, seen = list(phases), set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for f in (root / "tests" / f"phase{p}").glob("*.py"):
            todo += [int(m) for m in PHASE_IMPORT_RE.findall(f.read_text(encoding="utf-8"))]
    return seen


def _copy_labs(root: Path, dest: Path, given: set[int]) -> None:
    for pdir in sorted((root / "labs").glob("phase-*")):
        n = int(pdir.name.split("-")[1])
        out = dest / "labs" / pdir.name
        for f in settings_files(pdir):
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out / f.name)
        if n not in given:
            continue
        pages = [f for f in pdir.iterdir() if f.is_file() and f.suffix == ".md"
                 and (f.name.startswith("README") or f.name.startswith("00-"))]
        for page in pages:
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy2(page, out / page.name)
            for img in IMAGE_RE.findall(page.read_text(encoding="utf-8")):
                src = (pdir / img).resolve()
                if src.is_file() and src.is_relative_to(pdir.resolve()):
                    (out / img).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, out / img)


def learner_justfile(root: Path) -> str:
    """The instructor's justfile with only the learner's recipes, plus the handout's own."""
    chunks = re.split(r"\n\s*\n", (root / "justfile").read_text(encoding="utf-8"))
    keep = []
    for chunk in chunks:
        header = next((ln for ln in chunk.splitlines() if ln and not ln.startswith(("#", " ", "\t"))), "")
        m = re.match(r"@?([A-Za-z][\w-]*)\b[^:=]*:(?!=)", header)
        if m is None or m.group(1) in LEARNER_RECIPES:
            keep.append(chunk.strip("\n"))
    return "\n\n".join(keep) + "\n" + LEARNER_JUST


def _pyproject(root: Path) -> str:
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    return "\n".join(ln for ln in text.splitlines() if "minimoe.course" not in ln) + "\n"


def readme(codes: dict[str, str], catalog: dict[str, Break], blind: bool, phases: list[int],
           learner: str | None) -> str:
    rows = []
    for code, bid in codes.items():
        b = catalog[bid]
        rows.append(f"| {code} | {b.phase} | " + ("a break hidden in the package: find it from its symptoms"
                                                  if blind else f"{b.t('title')} — {b.t('concept')}") + " |")
    pages = ", ".join(f"`labs/phase-{p}-*/`" for p in phases)
    who = learner or "<your-name>"
    hunt = ["just moe-train --steps 500    # train; watch the step lines and the routing health report",
            f"just hint {next(iter(codes)):<19} # the next rung of the hint ladder (--lang es); rungs are recorded"]
    if not learner:
        hunt.append(f"just new-learner {who:<12} # your notes templates")
    hunt.append("just notes                    # is every notes record complete?")
    return f"""# minimoe — your exercises

This repository is a copy of the minimoe package with {'a break' if len(codes) == 1 else 'breaks'} in it:
a one-line bug that makes the MoE misbehave. Your job: find it from the symptoms, explain it, fix
it, and write down what you found. Read the lab pages first: {pages}.

| exercise | phase | what |
|---|---|---|
{chr(10).join(rows)}

## Set up (two commands)

```bash
python3 -m pip install rust-just && just setup
just test          # the learner-facing tests: red where the break shows
```

## Hunt

```bash
{chr(10).join(hunt)}
```

Write one record per exercise in `learners/{who}/phase-NN/notes/breaks.md`, with the
exercise's code as its `bug-id`. Fix the bug in `src/minimoe/`: only your changes there and your
notes are graded; the tests that grade you are your instructor's, run on their machine.

## Submit

```bash
just submit        # commits your work and writes ../{learner or '<folder>'}.bundle: send that file
```
"""


def check_leaks(stage: Path, given: list[Break], catalog: dict[str, Break], blind: bool) -> None:
    """Refuse a handout that holds an original line, an answer text, or (blind) a break's id or title.
    The message is the instructor's: it names what leaked where, so the course's files can be mended."""
    needles = [(b.old.strip(), f"the original line of {b.id}") for b in given]
    for b in catalog.values():
        for f in ("hidden_cause", "fix"):
            needles += [(b.t(f, lang), f"{b.id}'s {f} text") for lang in ("en", "es")]
        if blind:
            needles += [(b.t("title", lang), f"{b.id}'s title {b.t('title', lang)!r}") for lang in ("en", "es")]
    ids = re.compile(r"(?<![\d.-])(" + "|".join(re.escape(b.id) for b in catalog.values()) + r")(?!\d)")
    found: dict[str, list[str]] = {}
    for p in sorted(stage.rglob("*")):
        if not p.is_file() or ".git" in p.relative_to(stage).parts:
            continue
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images
        what = [w for needle, w in needles if needle and needle in text]
        if blind:
            what += [f"the id {m.group(1)} (line {text.count(chr(10), 0, m.start()) + 1})" for m in ids.finditer(text)]
        if what:
            found[p.relative_to(stage).as_posix()] = list(dict.fromkeys(what))
    if found:
        listing = "; ".join(f"{f}: {', '.join(w[:4])}{' ...' if len(w) > 4 else ''}" for f, w in found.items())
        raise CourseError(f"the handout would give answers away, so nothing was written. {listing}. Remove them "
                          "from those files of the course (a README or lab 00 names no break) and build it again")


def build(root: Path, catalog: dict[str, Break], breaks: list[Break], blind: bool, learner: str | None,
          classroom: Path, rng: random.Random) -> Handout:
    """Build one handout repository (and its bundle) under classroom/handouts/; return its record."""
    hid = f"h-{rng.getrandbits(32):08x}"
    order = list(breaks)
    rng.shuffle(order)
    codes = {f"X{i + 1}": b.id for i, b in enumerate(order)} if blind else {b.id: b.id for b in breaks}
    phases = sorted({b.phase for b in breaks})
    with tempfile.TemporaryDirectory(prefix="minimoe-handout-") as tmp:
        stage = Path(tmp) / "repo"
        _pristine_package(root, catalog, stage / "src" / "minimoe")
        for b in breaks:
            p = stage / b.target
            text = p.read_text(encoding="utf-8")
            if text.count(b.old) != 1:
                raise CourseError(f"break {b.id}: its line is not once in {b.target}; `just verify-breaks` first")
            p.write_text(text.replace(b.old, b.new, 1), encoding="utf-8")
        tests = stage / "tests"
        tests.mkdir()
        shutil.copy2(root / "tests" / "conftest.py", tests / "conftest.py")
        shutil.copytree(root / "tests" / "core", tests / "core", ignore=IGNORE)
        for n in sorted(needed_phases(root, set(phases))):
            shutil.copytree(root / "tests" / f"phase{n}", tests / f"phase{n}", ignore=IGNORE)
        _copy_labs(root, stage, set(phases))
        for name in (".gitignore",):
            if (root / name).is_file():
                shutil.copy2(root / name, stage / name)
        (stage / "justfile").write_text(learner_justfile(root), encoding="utf-8")
        (stage / "pyproject.toml").write_text(_pyproject(root), encoding="utf-8")
        (stage / "README.md").write_text(readme(codes, catalog, blind, phases, learner), encoding="utf-8")
        tool = stage / "exercise"
        tool.mkdir()
        (tool / "__init__.py").write_text('"""Your exercises: `python -m exercise --help`."""\n', encoding="utf-8")
        for src, dst in TOOL.items():
            shutil.copy2(HERE / src, tool / dst)
        exercises = []
        for code, bid in codes.items():
            b = catalog[bid]
            x = {"code": code, "phase": b.phase,
                 "hints": {lang: [encode_rung(b.hint(r, lang)) for r in (1, 2, 3)] for lang in ("en", "es")}}
            if not blind:
                x.update(title=b.t("title"), concept=b.t("concept"))
            exercises.append(x)
        (tool / "exercises.json").write_text(json.dumps(
            {"handout": hid, "learner": learner, "blind": blind, "phases": phases, "exercises": exercises},
            indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if learner:
            for phase in phases:
                p = notes_path(stage, learner, phase)
                p.parent.mkdir(parents=True, exist_ok=True)
                mine = [c for c, bid in codes.items() if catalog[bid].phase == phase]
                p.write_text(template(phase, learner, mine[0] if len(mine) == 1 else "", check="just notes",
                                      codes=mine), encoding="utf-8")
        check_leaks(stage, breaks, catalog, blind)
        _git(stage, "init", "-q", "-b", "main")
        _git(stage, "add", "-A")
        _git(stage, "commit", "-q", "-m", "Exercises")
        commit = _git(stage, "rev-parse", "HEAD")
        folder = classroom / "handouts" / hid
        folder.mkdir(parents=True)
        name = learner or "class"
        shutil.move(str(stage), folder / name)
        _git(folder / name, "bundle", "create", "-q", str((folder / f"{name}.bundle").resolve()), "--all")
    return Handout(hid, learner, blind, codes, phases, commit, f"handouts/{hid}/{name}",
                   f"handouts/{hid}/{name}.bundle", now())


def pick(catalog: dict[str, Break], phase: int | None, ids: list[str] | None, count: int,
         rng: random.Random) -> list[Break]:
    """The breaks of one handout: the given ids, or `count` drawn from a phase (distinct lines)."""
    if ids:
        return [catalog[i] for i in ids]
    pool = [b for b in catalog.values() if b.phase == phase]
    if not pool:
        raise CourseError(f"phase {phase} has no breaks; phases with breaks: "
                          f"{', '.join(sorted({str(b.phase) for b in catalog.values()}))}")
    if not 1 <= count <= len(pool):
        raise CourseError(f"--count {count}: phase {phase} has {len(pool)} breaks; give 1 to {len(pool)}")
    return rng.sample(pool, count)

