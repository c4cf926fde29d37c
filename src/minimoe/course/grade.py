"""Grading a learner: did they find the break, explain it, and reverse it?

For each break the learner was given (learners/<name>/progress.json) or wrote a record for:

  detectors   its detector tests pass now (seed 0), in this checkout
  reversed    the broken line is gone: "reverted" (the pristine line is back), "fixed otherwise"
              (the line differs from both; the detectors judge the fix), or "still on"
  tests       tests/ is unmodified: every file's SHA-256 matches tests.sha256 (the course's manifest)
  notes       learners/<name>/phase-NN/notes/breaks.md holds a complete, valid record with its bug-id
  hints       how many rungs of the hint ladder the learner opened (reported, not penalised)

A break passes when detectors, tests and notes pass and the break is not still on. The result is
a table on the terminal and grade.json + grade.md beside the learner's notes, one pair per phase.
`gradebook` collects every learner's grade.json into one CSV for the instructor.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .catalog import Break, CourseError
from .learners import learner_dir, read_progress
from .notes import bug_ids, check_record, notes_path, read_records, record_for
from .runner import run_detectors
from .switch import atomic_write, status

MANIFEST = Path("src/minimoe/course/tests.sha256")


def test_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "tests").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc"))


def compute_manifest(root: Path) -> str:
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}"
             for p in test_files(root)]
    return "\n".join(lines) + "\n"


def modified_tests(root: Path) -> list[str]:
    """Test files that differ from the manifest, were added, or are missing."""
    want = {}
    for line in (root / MANIFEST).read_text(encoding="utf-8").splitlines():
        sha, _, path = line.partition("  ")
        want[path] = sha
    have = {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in test_files(root)}
    changed = [f"{p} (changed)" for p in want if p in have and have[p] != want[p]]
    changed += [f"{p} (missing)" for p in want if p not in have]
    changed += [f"{p} (added)" for p in have if p not in want]
    return sorted(changed)


@dataclass
class BreakGrade:
    id: str
    title: str
    detectors_pass: bool
    detector_failures: list[str]
    reversal: str  # reverted | fixed otherwise | still on
    notes_ok: bool
    notes_problems: list[str]
    hints_used: int
    passed: bool = False


@dataclass
class LearnerGrade:
    learner: str
    graded_at: str
    tests_unmodified: bool
    modified_tests: list[str]
    breaks: list[BreakGrade] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(b.passed for b in self.breaks)


def _reversal(b: Break, root: Path) -> str:
    return {"off": "reverted", "on": "still on", "edited": "fixed otherwise"}[status(b, root)]


def grade(root: Path, catalog: dict[str, Break], name: str, run_tests: bool = True) -> LearnerGrade:
    d = learner_dir(root, name)
    if not d.is_dir():
        raise CourseError(f"no learner {name} (learners/{name}/); `just new-learner {name}` creates one")
    prog = read_progress(root, name)
    records, note_errors = {}, {}
    for phase in sorted({b.phase for b in catalog.values()}):
        try:
            records[phase] = read_records(notes_path(root, name, phase))
        except CourseError as e:
            records[phase], note_errors[phase] = [], str(e)
    ids = set(prog["given"]) | {i for recs in records.values() for i in bug_ids(recs)}
    unknown = sorted(i for i in ids if i not in catalog)
    ids = sorted(i for i in ids if i in catalog)
    modified = modified_tests(root)
    result = LearnerGrade(name, datetime.now(timezone.utc).isoformat(timespec="seconds"), not modified, modified)
    detectors = sorted({x for i in ids for x in catalog[i].detectors})
    outcomes = run_detectors(root, detectors, [0]) if run_tests and ids else []
    for bid in ids:
        b = catalog[bid]
        fails = [o.detector.split("::")[-1] for o in outcomes if o.detector in b.detectors and not o.passed]
        problems = []
        if b.phase in note_errors:
            problems.append(note_errors[b.phase])
        else:
            rec = record_for(records[b.phase], bid)
            where = f"learners/{name}/phase-{b.phase}/notes/breaks.md, record {bid}"
            problems = check_record(rec, where) if rec else [
                f"learners/{name}/phase-{b.phase}/notes/breaks.md: no record with bug-id: {bid}"]
        bg = BreakGrade(bid, b.t("title"), run_tests and not fails, fails, _reversal(b, root), not problems, problems,
                        len(prog["hints"].get(bid, [])))
        bg.passed = bg.detectors_pass and bg.notes_ok and bg.reversal != "still on" and result.tests_unmodified
        result.breaks.append(bg)
    for u in unknown:
        result.breaks.append(BreakGrade(u, "(unknown bug-id)", False, [], "-", False,
                                        [f"bug-id {u!r} is not in the catalog (`just breaks` lists the ids)"], 0))
    return result


def table(g: LearnerGrade) -> str:
    rows = [f"learner {g.learner}: {g.passed}/{len(g.breaks)} breaks passed; tests/ "
            + ("unmodified" if g.tests_unmodified else "MODIFIED: " + ", ".join(g.modified_tests)),
            f"{'break':<6}  {'detectors':<9}  {'reversal':<15}  {'notes':<5}  {'hints':>5}  {'result':<6}  title"]
    for b in g.breaks:
        rows.append(f"{b.id:<6}  {'green' if b.detectors_pass else 'RED':<9}  {b.reversal:<15}  "
                    f"{'ok' if b.notes_ok else 'TODO':<5}  {b.hints_used:>3}/3  "
                    f"{'PASS' if b.passed else 'FAIL':<6}  {b.title}")
    for b in g.breaks:
        for p in b.notes_problems:
            rows.append(f"  {b.id} notes: {p}")
        for f in b.detector_failures:
            rows.append(f"  {b.id} detector still red: {f}")
    if not g.breaks:
        rows.append("no breaks given yet: `just break on <id>` (or `just break blind <phase>`) gives one")
    return "\n".join(rows)


def markdown(g: LearnerGrade) -> str:
    out = [f"# Grade — {g.learner}", "", f"Graded {g.graded_at}. {g.passed}/{len(g.breaks)} breaks passed. "
           f"tests/ {'unmodified' if g.tests_unmodified else 'modified: ' + ', '.join(g.modified_tests)}.", "",
           "| break | detectors | reversal | notes | hints | result |", "|---|---|---|---|---|---|"]
    for b in g.breaks:
        out.append(f"| {b.id} {b.title} | {'green' if b.detectors_pass else 'red'} | {b.reversal} | "
                   f"{'ok' if b.notes_ok else '; '.join(b.notes_problems)} | {b.hints_used}/3 | "
                   f"{'PASS' if b.passed else 'FAIL'} |")
    return "\n".join(out) + "\n"


def write_reports(root: Path, g: LearnerGrade, catalog: dict[str, Break]) -> list[Path]:
    written = []
    by_phase: dict[int, list[BreakGrade]] = {}
    for b in g.breaks:
        phase = catalog[b.id].phase if b.id in catalog else int(b.id.split("-")[0]) if b.id[:2].isdigit() else None
        if phase is not None:
            by_phase.setdefault(phase, []).append(b)
    for phase, breaks in by_phase.items():
        folder = notes_path(root, g.learner, phase).parent
        folder.mkdir(parents=True, exist_ok=True)
        part = LearnerGrade(g.learner, g.graded_at, g.tests_unmodified, g.modified_tests, breaks)
        atomic_write(folder / "grade.json", json.dumps(asdict(part), indent=2).encode())
        atomic_write(folder / "grade.md", markdown(part).encode())
        written += [folder / "grade.json", folder / "grade.md"]
    return written


def gradebook(root: Path) -> str:
    """CSV of every learner's saved grades (learners/*/phase-*/notes/grade.json), one row per break."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["learner", "break", "title", "detectors", "reversal", "notes", "hints_used", "tests_unmodified",
                "result", "graded_at"])
    for path in sorted((root / "learners").glob("*/phase-*/notes/grade.json")):
        try:
            g = json.loads(path.read_text(encoding="utf-8"))
            for b in g["breaks"]:
                w.writerow([g["learner"], b["id"], b["title"], "green" if b["detectors_pass"] else "red", b["reversal"],
                            "ok" if b["notes_ok"] else "incomplete", b["hints_used"], g["tests_unmodified"],
                            "PASS" if b["passed"] else "FAIL", g["graded_at"]])
        except (ValueError, KeyError, TypeError):
            w.writerow([path.parts[-4], "?", f"unreadable {path.relative_to(root)}: ask the learner to re-run "
                        "`just grade`", "", "", "", "", "", "FAIL", ""])
    return buf.getvalue()
