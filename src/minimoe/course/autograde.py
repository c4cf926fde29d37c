"""Autograding a class's submissions on the instructor's side (`just autograde SUBMISSION...`).

A submission is a learner's handout repository: a folder, a git bundle (`just submit` writes
one), or a .tar/.tar.gz/.tgz/.zip archive; its file or folder name is the learner's name unless
--learner says otherwise. From it, only what a learner may change is taken:

    src/minimoe/**.py                 the package (never src/minimoe/course/)
    learners/*/phase-NN/notes/breaks.md   the notes
    exercise/hints-opened.json        the hint rungs opened (self-reported, reported as such)

Everything else is ignored (tests, any conftest.py, __pycache__, plugins, progress or grade
files): files that differ from the handout there are listed, never used. The taken files are
laid into a fresh scratch copy of the instructor's checkout, and the instructor's own detectors
run there in a clean environment (runner.py: no plugin autoload, no caller PYTHONPATH or
PYTEST_*, no bytecode from anywhere but a fresh folder, fixed addopts) on every grading seed
(labs/seeds.yaml, or --seeds), with a time limit per submission.

Only the exercises of the learner's handout are graded (classroom.py's roster). An exercise
passes when its injected line is gone, its detectors are green on every seed and its notes
record (bug-id = the exercise's code) is complete. The injected line counts as gone only when its
code is: rewording its comment changes nothing.

The learner's package code runs inside the detectors, as the instructor's user, so a pass is
trusted only as far as that code is. A pass becomes REVIEW (the instructor reads the diff first)
when added lines reach for the test machinery, the process or the system (pytest, sys.modules,
getattr, os._exit, subprocess, grad-mode checks, ...; lines are read as Python reads them, with
tokenize: a '#' inside a string hides nothing), when code changes outside the exercises' own files,
when a file declares a source encoding other than UTF-8 (Python would read other code than the diff
shows), when the submission's history lacks the learner's handout commit, or when its notes are
another learner's. Outcomes are shared between identical packages within one run, in memory only,
never through a file a learner's code could write; the break files (labs/*/breaks/) are not copied
where that code runs; and every file the grade depends on (the instructor's tests, labs, package and
engine, the roster, the saved results) is fingerprinted before and after each submission: a change
stops the grading and names the submission. For stakes where that is not enough, run `just
autograde` in a container or as a user who cannot write to your checkout.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import subprocess
import tarfile
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path, PurePosixPath

from . import classroom
from .catalog import Break, CourseError, course_seeds
from .grade import Verdict, code_lines, conclude, detector_verdict, hint_texts, never_given, notes_verdict, reversal
from .handout import Handout
from .learners import NAME_RE, check_name, now
from .notes import bug_ids, notes_path, read_records
from .runner import Outcome, run_detectors
from .switch import scratch_copy

MAX_FILE = 1 << 20  # bytes: a larger file in a submission is ignored and reported
MAX_TOTAL = 64 << 20
NOTES_RE = re.compile(r"learners/([A-Za-z0-9][A-Za-z0-9_-]{0,39})/phase-(\d+)/notes/breaks\.md")
HINTS = "exercise/hints-opened.json"
SUSPECT_RE = re.compile(  # what a fix of one line in the model never needs: the test machinery, the process, the system
    r"\b(?:_?pytest|conftest|sys|os|atexit|builtins|__builtins__|__import__|importlib|subprocess|socket|ctypes|"
    r"exec|eval|compile|open|environ|signal|threading|multiprocessing|gc|inspect|setattr|getattr|delattr|hasattr|"
    r"vars|globals|locals|dir|type|object|shutil|tempfile|pathlib|pty|weakref|pickle|marshal|runpy|course|"
    r"results_plugin|_results|sitecustomize|usercustomize|breakpoint|exit|quit|"
    r"is_grad_enabled|is_inference_mode_enabled|is_inference|grad_enabled|"  # behaving differently under the detectors
    r"__subclasses__|__globals__|__code__|__dict__|__class__|__bases__|__mro__|__self__|__func__|MINIMOE_\w+)\b")
ARCHIVES = (".tar", ".tar.gz", ".tgz", ".zip")


def taken(rel: str) -> bool:
    """Is this path one a learner may change (and the grader reads)?"""
    p = PurePosixPath(rel)
    parts = p.parts
    if len(parts) >= 3 and parts[:2] == ("src", "minimoe"):
        return p.suffix == ".py" and parts[2] not in ("course", "course.py") and "__pycache__" not in parts
    return bool(NOTES_RE.fullmatch(rel)) or rel == HINTS


def _safe_rel(name: str) -> str | None:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts:
        return None
    return p.as_posix()


def _strip_prefix(files: dict[str, bytes]) -> dict[str, bytes]:
    """An archive may wrap the repository in a folder: find it by src/minimoe/__init__.py."""
    for rel in files:
        if rel.endswith("src/minimoe/__init__.py"):
            prefix = rel[: -len("src/minimoe/__init__.py")]
            return {r[len(prefix):]: d for r, d in files.items() if r.startswith(prefix)}
    return files


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Submission:
    """A submission's files: `files` the taken ones, `listing` every regular file's git blob hash."""

    def __init__(self, path: Path, learner: str):
        self.path, self.learner = path, learner
        self.files: dict[str, bytes] = {}
        self.listing: dict[str, str] = {}
        self.too_large: list[str] = []
        self.git_dir: Path | None = None  # a bundle's clone, for the ancestry check

    def add(self, rel: str | None, data_fn) -> None:
        if rel is None:
            return
        data = data_fn()
        if len(data) > MAX_FILE:
            self.too_large.append(rel)
            return
        self.listing[rel] = git_blob_sha(data)
        if taken(rel):
            if sum(map(len, self.files.values())) + len(data) > MAX_TOTAL:
                raise CourseError(f"submission {self.path}: more than {MAX_TOTAL >> 20} MB of source")
            self.files[rel] = data


def _from_folder(s: Submission) -> None:
    base = s.path.resolve()
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base).as_posix()
        if ".git" in PurePosixPath(rel).parts or p.is_symlink() or not p.is_file():
            continue
        if p.stat().st_size > MAX_FILE:
            s.too_large.append(rel)
            continue
        s.add(rel, p.read_bytes)


def _git(cwd: Path, *args: str, text: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-c", "core.hooksPath=/dev/null", *args], cwd=cwd, capture_output=True,
                          text=text, timeout=120)


def _from_bundle(s: Submission, work: Path) -> None:
    clone = work / "clone"
    made = _git(work, "clone", "-q", "--bare", str(s.path.resolve()), str(clone))
    if made.returncode:
        raise CourseError(f"submission {s.path}: not a readable git bundle ({made.stderr.strip()[:200]}); "
                          "ask the learner to run `just submit` again")
    s.git_dir = clone
    tree = _git(clone, "ls-tree", "-r", "-z", "HEAD").stdout
    for entry in filter(None, tree.split("\0")):
        meta, _, rel = entry.partition("\t")
        mode, kind, sha = meta.split()
        if kind != "blob" or mode == "120000":
            continue  # links and submodules are never followed
        s.add(_safe_rel(rel), lambda sha=sha: _git(clone, "cat-file", "blob", sha, text=False).stdout)


def _from_archive(s: Submission) -> None:
    name = s.path.name
    members: dict[str, bytes] = {}

    def keep(rel: str, size: int, read) -> None:  # every member counts against MAX_TOTAL, taken or not
        if size > MAX_FILE:
            s.too_large.append(rel)
        elif sum(map(len, members.values())) + size > MAX_TOTAL:
            raise CourseError(f"submission {s.path}: more than {MAX_TOTAL >> 20} MB in the archive")
        else:
            members[rel] = read()

    if name.endswith(".zip"):
        with zipfile.ZipFile(s.path) as z:
            for info in z.infolist():
                is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                rel = _safe_rel(info.filename)
                if not info.is_dir() and not is_link and rel:
                    keep(rel, info.file_size, lambda info=info: z.read(info))
    else:
        with tarfile.open(s.path) as t:
            for m in t.getmembers():
                rel = _safe_rel(m.name)
                if m.isfile() and rel:
                    keep(rel, m.size, lambda m=m: t.extractfile(m).read())
    for rel, data in _strip_prefix(members).items():
        s.add(rel, lambda data=data: data)


def read_submission(path: Path, learner: str | None, work: Path) -> Submission:
    if not path.exists():
        raise CourseError(f"submission {path}: no such file or folder")
    if not (path.is_dir() or path.name.endswith((".bundle", *ARCHIVES))):
        raise CourseError(f"submission {path}: expected a folder, a .bundle or a {'/'.join(ARCHIVES)} archive")
    stem = path.name
    for ext in (".bundle", *ARCHIVES):
        stem = stem[: -len(ext)] if stem.endswith(ext) else stem
    name = learner or stem
    if not NAME_RE.fullmatch(name):
        raise CourseError(f"submission {path}: {name!r} is not a learner name; name the file after the learner "
                          "(ana.bundle) or give --learner")
    s = Submission(path, name)
    try:
        if path.is_dir():
            _from_folder(s)
        elif path.name.endswith(".bundle"):
            _from_bundle(s, work)
        else:
            _from_archive(s)
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as e:
        why = str(e).strip().splitlines()[0].rstrip(":") if str(e).strip() else type(e).__name__
        raise CourseError(f"submission {path}: cannot be read as {path.suffix or 'a folder'} ({why}); ask the "
                          "learner to send it again") from None
    if "src/minimoe/__init__.py" not in s.files:
        raise CourseError(f"submission {path}: no src/minimoe/ package in it; is it the handout repository?")
    return s


def content_hash(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(files[rel]).digest())
    return h.hexdigest()


def _handout_files(cls: Path, h: Handout) -> dict[str, bytes]:
    repo = cls / h.repo
    out = {}
    tree = _git(repo, "ls-tree", "-r", "-z", h.commit).stdout
    for entry in filter(None, tree.split("\0")):
        meta, _, rel = entry.partition("\t")
        out[rel] = _git(repo, "cat-file", "blob", meta.split()[2], text=False).stdout
    return out


def diff_stats(before: dict[str, bytes], after: dict[str, bytes],
               targets: set[str]) -> tuple[dict[str, list[int]], list[str]]:
    """Per package file, [added, removed] lines against the handout; and what needs the instructor's eye:
    added lines that reach for the test machinery or the system, code changed outside the exercises' own
    files (`targets`) — where a symptom could be hidden instead of its cause fixed — and a file whose bytes
    Python would read otherwise than the diff shows. Lines are compared as Python reads them, without their
    comments: a change to a comment alone is no change of code."""
    per, review = {}, []
    for rel in sorted(set(before) | set(after)):
        if not rel.startswith("src/minimoe/"):
            continue
        if before.get(rel, b"") == after.get(rel, b""):
            continue
        a_text = before.get(rel, b"").decode("utf-8", "replace").splitlines()
        b_text = after.get(rel, b"").decode("utf-8", "replace").splitlines()
        a_code, _ = code_lines(before.get(rel, b""))
        b_code, why = code_lines(after.get(rel, b""))
        if why:
            review.append(f"{rel}: {why}")
        diff = [line for line in difflib.unified_diff(a_text, b_text, lineterm="", n=0)
                if not line.startswith(("+++", "---"))]
        added, removed = sum(line[:1] == "+" for line in diff), sum(line[:1] == "-" for line in diff)
        code_changed = 0
        for line in difflib.unified_diff([c.strip() for c in a_code], [c.strip() for c in b_code], lineterm="", n=0):
            if line.startswith(("+++", "---")) or not line[1:].strip():
                continue
            code_changed += line[0] in "+-"
            if line[0] == "+" and SUSPECT_RE.search(line[1:]):
                review.append(f"{rel}: +{line[1:].strip()[:120]}")
        per[rel] = [added, removed]
        if rel not in targets and (code_changed or why):
            review.append(f"{rel}: code changed outside the exercise's file (+{added}/-{removed})")
    return per, review


def _notes(s: Submission, work: Path, phase: int) -> tuple[list[dict] | None, str | None, str]:
    """The learner's records for a phase: from learners/<learner>/, or the only learner folder there is."""
    names = sorted({m.group(1) for rel in s.files if (m := NOTES_RE.fullmatch(rel)) and int(m.group(2)) == phase})
    name = s.learner if s.learner in names else names[0] if len(names) == 1 else s.learner
    rel = f"learners/{name}/phase-{phase}/notes/breaks.md"
    if rel not in s.files:
        return None, f"{rel}: missing from the submission", rel
    p = notes_path(work, name, phase)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(s.files[rel])
    try:
        return read_records(p), None, rel
    except CourseError as e:
        return None, str(e).replace(str(work) + "/", ""), rel


def _hints(s: Submission) -> dict[str, int]:
    try:
        data = json.loads(s.files.get(HINTS, b"{}").decode("utf-8"))
        return {str(k): len({r for r in v if r in (1, 2, 3)}) for k, v in data.items() if isinstance(v, list)}
    except (ValueError, AttributeError, UnicodeDecodeError):
        return {}


_OUTCOMES: dict[str, list[Outcome]] = {}  # this run's detector outcomes, by package: in this process only
_OUTCOMES_LOCK = threading.Lock()


def _cached_detectors(cls: Path, work: Path, package: dict[str, bytes], detectors: list[str], seeds: list[int],
                      timeout: float) -> list[Outcome]:
    """The detectors' outcomes on this package: run once per distinct package (and tests, lab settings,
    seeds) in one `just autograde`, so a class whose fixes are alike grades faster. Kept in this process's
    memory, never on disk: the learners' code runs in the detectors' processes, as the instructor's user,
    and could write a file that a later submission's grade would read."""
    judge = {p.relative_to(work).as_posix(): p.read_bytes() for p in sorted(work.glob("tests/**/*.py"))}
    judge |= {p.relative_to(work).as_posix(): p.read_bytes() for p in sorted(work.glob("labs/*/*.*"))
              if p.suffix in (".yaml", ".toml", ".json")}
    key = hashlib.sha256(json.dumps([content_hash(package), content_hash(judge), detectors, seeds,
                                     torch_version()]).encode()).hexdigest()
    with _OUTCOMES_LOCK:
        if key in _OUTCOMES:
            return _OUTCOMES[key]
    outcomes = run_detectors(work, detectors, seeds, workers=1, timeout=timeout)
    if not any(o.message.startswith("did not run") for o in outcomes):  # a crash or a timeout is not kept
        with _OUTCOMES_LOCK:
            _OUTCOMES[key] = outcomes
    return outcomes


JUDGE_PATHS = ("tests", "labs", "src/minimoe", "justfile", "pyproject.toml")  # the instructor's checkout


def judge_fingerprint(root: Path, cls: Path) -> dict[str, str]:
    """Every file the grade depends on, by content hash: the instructor's detectors, lab settings, package and
    engine, and the class's roster and saved results. The learners' code runs as the instructor's user and
    could reach them; `autograde` compares this before and after each submission."""
    files = [p for name in JUDGE_PATHS for p in ([root / name] if (root / name).is_file() else
                                                 sorted((root / name).rglob("*")))]
    files += [cls / "roster.json", *sorted((cls / "results").glob("*.json"))]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def torch_version() -> str:
    try:
        return version("torch")
    except PackageNotFoundError:
        return "none"


def grade_submission(root: Path, catalog: dict[str, Break], cls: Path, roster: dict, path: Path,
                     learner: str | None, seeds: list[int], timeout: float) -> dict:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="minimoe-autograde-") as tmp:
        tmp = Path(tmp)
        s = read_submission(path, learner, tmp)
        h = classroom.handout_for(roster, s.learner)
        handed = _handout_files(cls, h)
        descends = None
        if s.git_dir is not None:
            descends = _git(s.git_dir, "merge-base", "--is-ancestor", h.commit, "HEAD").returncode == 0
        elif (path / ".git").exists():
            descends = _git(path, "merge-base", "--is-ancestor", h.commit, "HEAD").returncode == 0
        work = tmp / "work"
        work.mkdir()
        scratch_copy(root, work, answers=False)  # the learner's code runs there: no break's answer in reach
        pkg = work / "src" / "minimoe"
        for p in list(pkg.rglob("*.py")):
            if "course" not in p.relative_to(pkg).parts[:1]:
                p.unlink()
        for rel, data in s.files.items():
            if rel.startswith("src/minimoe/"):
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                (work / rel).write_bytes(data)
        breaks = {code: catalog[bid] for code, bid in h.codes.items()}
        per_file, review = diff_stats(handed, s.files, {b.target for b in breaks.values()})
        if descends is False:
            review.append(f"the submission's history does not contain {s.learner}'s handout commit: another "
                          "learner's work, or a repository started over")
        detectors = sorted({d for b in breaks.values() for d in b.detectors})
        outcomes = _cached_detectors(cls, work, {r: d for r, d in s.files.items() if r.startswith("src/")},
                                     detectors, seeds, timeout)
        hints = _hints(s)
        exercises, records_by_phase = [], {}
        for code, b in breaks.items():
            if b.phase not in records_by_phase:
                records_by_phase[b.phase] = _notes(s, tmp / "notes", b.phase)
            records, error, where = records_by_phase[b.phase]
            if not where.startswith(f"learners/{s.learner}/") and records is not None and \
                    f"notes of {where}" not in review:
                review.append(f"notes of {where}: another learner's folder than {s.learner}'s")
            text = s.files.get(b.target, b"").decode("utf-8", "replace")
            det, fails = detector_verdict(b, outcomes, True)
            problems = notes_verdict(records, error, code, where, hint_texts(b))
            shipped = (root / b.target).read_text(encoding="utf-8", errors="replace")  # the instructor's, as shipped
            v = conclude(Verdict(code, b.t("title"), reversal(b, text, shipped), det, fails, not problems, problems,
                                 hints.get(code, 0)))
            result = "PASS" if v.passed else "FAIL"
            if v.passed and review:
                result = "REVIEW"
                v.reasons.append(f"{len(review)} change(s) to review (code outside the exercise's file, or lines "
                                 "that reach for the test machinery or the system): read the diff before accepting")
            exercises.append({**asdict(v), "break": b.id, "result": result,
                              "hints_self_reported": v.hints_used})
        not_given = []
        codes = set(h.codes) | set(h.codes.values())
        for records, _, _ in records_by_phase.values():
            for bid in bug_ids(records or []):
                if bid not in codes:
                    codes.add(bid)
                    not_given.append({**asdict(never_given(bid, s.learner)), "result": "FAIL"})
        changed_elsewhere = sorted(rel for rel, sha in s.listing.items()
                                   if not taken(rel) and (rel not in handed or git_blob_sha(handed[rel]) != sha))
    return {
        "learner": s.learner, "handout": h.id, "submission": str(path), "content_sha256": content_hash(s.files),
        "graded_at": now(), "seconds": round(time.perf_counter() - t0, 1), "seeds": seeds,
        "descends_from_handout": descends,
        "diff": {"files": per_file, "added": sum(a for a, _ in per_file.values()),
                 "removed": sum(r for _, r in per_file.values())},
        "review": review, "ignored_changes": changed_elsewhere, "too_large": s.too_large,
        "exercises": exercises, "not_given": not_given,
    }


def autograde(root: Path, catalog: dict[str, Break], cls: Path, paths: list[Path], learner: str | None = None,
              seeds: list[int] | None = None, jobs: int = 1, timeout: float = 600, echo=print) -> list[dict]:
    """Grade every submission (in parallel with jobs > 1); save each result; return them."""
    if learner and len(paths) != 1:
        raise CourseError("--learner names the learner of one submission; give one path with it")
    if learner:
        check_name(learner)
    roster = classroom.read_roster(cls)
    if not roster["handouts"]:
        raise CourseError(f"no handouts in {cls / 'roster.json'}: `just handout` first")
    seeds = seeds or course_seeds(root)["grade"]

    expected = judge_fingerprint(root, cls)  # what the judge is before any learner's code runs
    lock = threading.Lock()

    def one(path: Path) -> dict:
        try:
            r = grade_submission(root, catalog, cls, roster, path, learner, seeds, timeout)
        except CourseError as e:
            return {"submission": str(path), "error": str(e)}
        with lock:
            saved = classroom.save_result(cls, r)
            expected[str(saved)] = hashlib.sha256(saved.read_bytes()).hexdigest()
        return r

    results, t0 = [], time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        for path, future in [(p, pool.submit(one, p)) for p in paths]:
            r = future.result()
            echo(summary(r))
            results.append(r)
            changed = sorted({f for f, _ in set(expected.items()) ^ set(judge_fingerprint(root, cls).items())})
            if changed:
                names = [str(Path(f).relative_to(root)) if Path(f).is_relative_to(root) else f for f in changed]
                raise CourseError(
                    f"the judge changed while {path} was graded (or one graded beside it, with --jobs): "
                    f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}. A submission's code runs as your "
                    "user and wrote there: grading stops. Restore those files (git status, git checkout; a "
                    "result from its copy in classroom/results/history/) and read that submission by hand")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    echo(f"time: {len(paths)} submission(s) in {time.perf_counter() - t0:.0f} s with {jobs} job(s)")
    return results


def summary(r: dict) -> str:
    if "error" in r:
        return f"ERROR {r['submission']}: {r['error']}"
    lines = [f"{r['learner']}: " + ", ".join(f"{x['exercise']} {x['result']}" for x in r["exercises"] + r["not_given"])
             + f"  (diff +{r['diff']['added']}/-{r['diff']['removed']} lines, seeds {r['seeds']})"]
    for x in r["exercises"] + r["not_given"]:
        for why in x["reasons"]:
            lines.append(f"  {x['exercise']}: {why}")
        for f in x.get("detector_failures", [])[:3]:
            lines.append(f"  {x['exercise']} detector red: {f}")
        for p in x.get("notes_problems", [])[:3]:
            lines.append(f"  {x['exercise']} notes: {p}")
    for line in r["review"][:5]:
        lines.append(f"  review: {line}")
    if r["ignored_changes"]:
        shown = ", ".join(r["ignored_changes"][:6]) + (" ..." if len(r["ignored_changes"]) > 6 else "")
        lines.append(f"  ignored (changed outside what a learner may change): {shown}")
    return "\n".join(lines)

