"""Grading: did the learner find the break, explain it, and reverse it?

One verdict per exercise, from four checks:

  reversal   the injected line is gone: "reverted" (the pristine line is back), "fixed otherwise"
             (the line differs from both; the detectors judge the fix), "still on", or "switched
             off by the engine" (`just break off` restored it, not the learner)
  detectors  the break's detector tests pass, on every grading seed (labs/seeds.yaml)
  notes      a complete record for the exercise in phase-NN/notes/breaks.md (notes.py)
  hints      how many rungs of the hint ladder were opened before the first pass (reported, not penalised)

An exercise passes when it is reversed, its detectors are green and its notes are complete.
Only exercises that were given are graded: a record for anything else is a FAIL that says so.

A blind exercise's answer is which break it was: the bug-id of its record. Until it is fixed (the
line changed and the detectors green) its grade says neither which line nor whether a record's id
is right, so that the grade cannot be asked in place of the hunt: the reversal is not shown, the
notes wait, and a record for a break not given in that phase is not called out.

This module grades a *self-study* checkout (`just grade NAME`): the learner's own checkout, with
the answers and the tests in their hands, so the report is honest feedback, not a judge, and
says so. A class is graded by `just autograde` (autograde.py), which uses the same verdicts but
takes nothing from the learner except their package source and their notes.
"""

from __future__ import annotations

import io
import subprocess
import tokenize
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .catalog import Break, CourseError, course_seeds
from .guard import atomic_write
from .learners import learner_dir, read_progress, record_graded
from .notes import bug_ids, check_record, notes_path, read_records, record_for
from .runner import Outcome, run_detectors
from .switch import id_hash

SELF_STUDY = ("self-study grade: honest feedback on your own checkout, not a judge — everything it reads is in "
              "your hands. A class is graded by the instructor's `just autograde`.")


@dataclass
class Verdict:
    exercise: str  # what the learner calls it: the break id, or a blind exercise's code
    title: str  # the break's title ("(blind)" while a blind exercise is not passed)
    reversal: str
    detectors: str  # green | red | not run
    detector_failures: list[str]
    notes_ok: bool
    notes_problems: list[str]
    hints_used: int
    passed: bool = False
    reasons: list[str] = field(default_factory=list)  # why it did not pass


def code_lines(data: bytes) -> tuple[list[str], str | None]:
    """The file's lines as Python reads them, each without its comment (strings kept: a '#' inside a string
    starts no comment); and why the file needs the instructor's eye before its lines can be trusted: a
    declared source encoding other than UTF-8 (Python would read other code than the diff shows), bytes
    that are not UTF-8, or text the tokenizer rejects (then the lines are kept whole, comments included)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as e:
        return data.decode("utf-8", "replace").splitlines(), f"declares a source encoding Python rejects ({e})"
    if encoding not in ("utf-8", "utf-8-sig"):
        return data.decode("utf-8", "replace").splitlines(), (f"declares the source encoding {encoding}: Python "
                                                               "reads other code than the diff shows")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace").splitlines(), "is not valid UTF-8"
    lines = text.splitlines()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                row, col = tok.start
                lines[row - 1] = lines[row - 1][:col]
    except (tokenize.TokenError, SyntaxError, IndexError):
        return text.splitlines(), "is not valid Python (its lines were read whole, comments included)"
    return lines, None


def as_code(text: str) -> list[str]:
    """Each line as Python reads it, for comparing: without its comment (code_lines) and without whitespace."""
    return ["".join(line.split()) for line in code_lines(text.encode())[0]]


def reversal(b: Break, text: str, pristine: str | None = None) -> str:
    """How the learner's version of b's target file stands against the break. With the file as shipped
    (`pristine`), lines are compared as code, without comments or spacing, so that rewording the comment of
    the injected line is no fix; the counts are taken against the shipped file's, since the same code can
    stand on another line there. Without it, the lines are compared as text."""
    if pristine is None or pristine.count(b.old) != 1:
        n_old, n_new = text.count(b.old), text.count(b.new)
        if n_new:
            return "still on"
        return "reverted" if n_old == 1 else "fixed otherwise"
    now_, shipped = as_code(text), as_code(pristine)
    (new,), (old,) = as_code(b.new), as_code(b.old)
    if now_.count(new) > shipped.count(new):
        return "still on"
    return "reverted" if now_.count(old) == shipped.count(old) else "fixed otherwise"


def shipped_text(root: Path, rel: str) -> str | None:
    """A file as the checkout's git HEAD has it (the package as shipped; a break is never committed)."""
    try:
        out = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=root, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else None


def failure_line(message: str) -> str:
    """The line of a pytest failure that says what was measured: the assertion's own message."""
    lines = message.strip().splitlines()
    said = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    return (said[0] if said else lines[-1] if lines else "")[:200]


def detector_verdict(b: Break, outcomes: list[Outcome], ran: bool) -> tuple[str, list[str]]:
    if not ran:
        return "not run", []
    fails = sorted({f"{o.detector.split('::')[-1]} [seed {o.seed}]: {failure_line(o.message)}"
                    for o in outcomes if o.detector in b.detectors and not o.passed})
    return ("green" if not fails else "red"), fails


def hint_texts(b: Break) -> tuple[str, ...]:
    """The break's hint ladder, every rung in every language: what a record must not copy."""
    return tuple(str(t) for h in b.hints for t in h.values())


def notes_verdict(records: list[dict] | None, error: str | None, bug_id: str, where: str,
                  course_text: tuple[str, ...] = ()) -> list[str]:
    if error:
        return [error]
    rec = record_for(records or [], bug_id)
    if rec is None:
        return [f"{where}: no record with bug-id: {bug_id}"]
    return check_record(rec, f"{where}, record {bug_id}", course_text)


def conclude(v: Verdict) -> Verdict:
    if v.reversal in ("still on", "switched off by the engine"):
        v.reasons.append({"still on": "the injected line is still there",
                          "switched off by the engine": "`just break off` restored the line; the learner did not "
                                                        "fix it"}[v.reversal])
    if v.detectors != "green":
        v.reasons.append("detectors not run" if v.detectors == "not run" else "a detector is still red")
    if not v.notes_ok:
        v.reasons.append("the notes record is incomplete")
    v.passed = not v.reasons
    return v


def never_given(bid: str, learner: str) -> Verdict:
    return Verdict(bid, "(not given)", "-", "not run", [], False,
                   [f"{bid} was never given to {learner}: only exercises handed to you are graded"], 0,
                   reasons=["never given"])


# ---------------------------------------------------------------- self-study

@dataclass
class SelfStudyGrade:
    learner: str
    graded_at: str
    seeds: list[int]
    tests_changes: list[str]  # changes to tests/ against the checkout's git HEAD
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(v.passed for v in self.verdicts)


def changed_tests(root: Path) -> list[str]:
    """Files under tests/ that differ from git HEAD (self-study: the checkout's own history)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", "tests"], cwd=root,
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode:
        return []  # not a git checkout: nothing to compare with
    return sorted(line[3:] for line in out.stdout.splitlines() if line.strip() and "__pycache__" not in line)


def _resolve(token: str, entry: dict, catalog: dict[str, Break]) -> Break | None:
    if entry.get("blind"):
        return next((b for b in catalog.values() if id_hash(entry.get("salt", ""), b.id) == entry.get("id_hash")),
                    None)
    return catalog.get(token)


def grade(root: Path, catalog: dict[str, Break], name: str, run_tests: bool = True) -> SelfStudyGrade:
    if not learner_dir(root, name).is_dir():
        raise CourseError(f"no learner {name} (learners/{name}/); `just new-learner {name}` creates one")
    prog = read_progress(root, name)
    seeds = course_seeds(root)["grade"]
    records, errors = {}, {}
    for phase in sorted({b.phase for b in catalog.values()}):
        try:
            records[phase] = read_records(notes_path(root, name, phase))
        except CourseError as e:
            records[phase], errors[phase] = [], str(e)
    given = [(token, entry, _resolve(token, entry, catalog)) for token, entry in sorted(prog["given"].items())]
    breaks = [b for _, _, b in given if b is not None]
    result = SelfStudyGrade(name, datetime.now(timezone.utc).isoformat(timespec="seconds"), seeds,
                            changed_tests(root))
    detectors = sorted({d for b in breaks for d in b.detectors})
    outcomes = run_detectors(root, detectors, seeds) if run_tests and detectors else []
    unfixed_blind: set[int] = set()  # phases with a blind exercise not yet fixed
    for token, entry, b in given:
        if b is None:
            result.verdicts.append(Verdict(token, "(no longer in the catalog)", "-", "not run", [], False, [], 0,
                                           reasons=["its break is not in the catalog"]))
            continue
        where = f"learners/{name}/phase-{b.phase}/notes/breaks.md"
        how = "switched off by the engine" if entry.get("switched_off") else \
            reversal(b, (root / b.target).read_text(encoding="utf-8", errors="replace"), shipped_text(root, b.target))
        det, fails = detector_verdict(b, outcomes, run_tests)
        fixed = how in ("reverted", "fixed otherwise") and det == "green"
        if entry.get("blind"):
            problems = blind_notes_verdict(records.get(b.phase), errors.get(b.phase), b, token, where, fixed)
            if not fixed:
                unfixed_blind.add(b.phase)
        else:
            problems = notes_verdict(records.get(b.phase), errors.get(b.phase), b.id, where, hint_texts(b))
        hints = entry.get("passed_hints")  # rungs read after the first pass do not count
        if not isinstance(hints, int) or not 0 <= hints <= 3:
            hints = len(set(prog["hints"].get(token, [])))
        v = conclude(Verdict(token, b.t("title"), how, det, fails, not problems, problems, hints))
        if run_tests:
            record_graded(root, name, token, fixed, v.passed)
        if entry.get("blind") and not v.passed:
            v.title = "(blind)"
            if not fixed and how != "switched off by the engine":  # which line it is, is the hunt's to find
                v.reversal = "not shown until fixed"
                v.reasons = [r for r in v.reasons if r != "the injected line is still there"]
                if det == "green":
                    v.reasons.insert(0, "the break is not fixed yet")
        result.verdicts.append(v)
    found = {b.id for b in breaks} | set(prog["given"])
    for phase, recs in records.items():
        for bid in bug_ids(recs):
            if bid not in found and phase not in unfixed_blind:  # (there: an answer to the blind exercise)
                result.verdicts.append(never_given(bid, name))
                found.add(bid)
    return result


def blind_notes_verdict(records: list[dict] | None, error: str | None, b: Break, token: str, where: str,
                        fixed: bool) -> list[str]:
    """The notes of a blind exercise, whose record's bug-id is the learner's answer: which break it was. They
    are judged only once the break is fixed, and never name the break, so that the grade cannot be asked
    which id is right."""
    if error:
        return [error]
    if not fixed:
        return [f"{where}: judged once the break of {token} is fixed and its detectors are green (the record's "
                f"bug-id, the break's id from `just breaks --titles --phase {b.phase}` once it is fixed, is part of "
                "your answer)"]
    rec = record_for(records or [], b.id)
    if rec is None:
        return [f"{where}: no record for the break you fixed ({token}): add one whose bug-id is that break's id "
                f"from `just breaks --titles --phase {b.phase}`"]
    return check_record(rec, f"{where}, record {b.id}", hint_texts(b))


def table(g: SelfStudyGrade) -> str:
    rows = [f"learner {g.learner}: {g.passed}/{len(g.verdicts)} exercises passed (seeds {g.seeds})", SELF_STUDY]
    if g.tests_changes:
        rows.append("tests/ differs from the checkout's git HEAD: " + ", ".join(g.tests_changes)
                    + " (a class's grade never reads your tests)")
    rows.append(f"{'exercise':<9}  {'reversal':<26}  {'detectors':<9}  {'notes':<5}  {'hints':>5}  result  title")
    for v in g.verdicts:
        rows.append(f"{v.exercise:<9}  {v.reversal:<26}  {v.detectors:<9}  {'ok' if v.notes_ok else 'TODO':<5}  "
                    f"{v.hints_used:>3}/3  {'PASS' if v.passed else 'FAIL':<6}  {v.title}")
    for v in g.verdicts:
        for r in v.reasons if not v.passed else []:
            rows.append(f"  {v.exercise}: FAIL because {r}")
        for p in v.notes_problems:
            rows.append(f"  {v.exercise} notes: {p}")
        for f in v.detector_failures:
            rows.append(f"  {v.exercise} detector red: {f}")
    if not g.verdicts:
        rows.append("nothing to grade yet: no exercise was given to you (`just break on <id>` or "
                    "`just break blind <phase>` gives one)")
    return "\n".join(rows)


def markdown(g: SelfStudyGrade) -> str:
    out = [f"# Self-study grade — {g.learner}", "", f"Graded {g.graded_at} on seeds {g.seeds}. "
           f"{g.passed}/{len(g.verdicts)} exercises passed.", "", f"*{SELF_STUDY}*", "",
           "| exercise | reversal | detectors | notes | hints | result |", "|---|---|---|---|---|---|"]
    for v in g.verdicts:
        why = "" if v.passed else " (" + "; ".join(v.reasons) + ")"
        out.append(f"| {v.exercise} {v.title} | {v.reversal} | {v.detectors} | "
                   f"{'ok' if v.notes_ok else '; '.join(v.notes_problems)} | {v.hints_used}/3 | "
                   f"{'PASS' if v.passed else 'FAIL'}{why} |")
    return "\n".join(out) + "\n"


def write_report(root: Path, g: SelfStudyGrade) -> Path:
    """grade.md in the learner's folder (a report for the learner; the class gradebook never reads it)."""
    path = learner_dir(root, g.learner) / "grade.md"
    atomic_write(path, markdown(g).encode())
    return path
