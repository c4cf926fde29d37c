"""Switching breaks on and off in the real source files, safely.

A break is *on* when its target file holds the broken line (`new`) and not the pristine one
(`old`); *off* when it holds the pristine line; *edited* when neither (changed by hand). That is
read from the file itself every time, and the engine never overwrites a line a learner edited.

The state file (.minimoe/state.json, git-ignored) lists the *exercises*: each break the engine
switched on, with what the file cannot say: whether it was given blind, to whom, and the file's
hash before the break (so `off` can say whether it restored the exact bytes). A blind exercise
is stored under an opaque token (`blind-1`) with a salted hash of its id, so neither the state
nor the learner's progress names it; its hints and its place in the state belong to the
exercise, not to the text of its line, so a partial fix does not lose them.

Every switch runs under the engine's lock with signals held (guard.py), and writes in an order
that a SIGKILL at any point leaves repairable: the state entry first (marked `applying`), then
the source file, then the entry marked done and the learner's progress. The next command
`reconcile`s an entry left `applying`: done if the file holds the break, dropped if it does not.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import learners
from .catalog import Break, CourseError
from .guard import atomic_write, exclusive, hold_signals

STATE = Path(".minimoe") / "state.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def id_hash(salt: str, bid: str) -> str:
    return _sha(f"{salt}:{bid}".encode())


@dataclass
class Exercise:
    token: str  # the break id, or `blind-N` for a blind one
    blind: bool
    phase: int
    learner: str | None
    sha_before: str  # the target file's hash before the break
    at: str
    id: str | None = None  # open exercises only
    salt: str | None = None  # blind: id_hash(salt, id) identifies the break without naming it
    id_hash: str | None = None
    applying: bool = False  # written before the file: a kill in between leaves this True

    def resolve(self, catalog: dict[str, Break]) -> Break | None:
        if self.id is not None:
            return catalog.get(self.id)
        return next((b for b in catalog.values() if id_hash(self.salt or "", b.id) == self.id_hash), None)

    def progress_entry(self) -> dict:
        return {"blind": True, "salt": self.salt, "id_hash": self.id_hash, "phase": self.phase} if self.blind \
            else {"blind": False, "phase": self.phase}


def read_source(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise CourseError(f"{path} is not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
                          "save it as UTF-8 (`git diff` shows what changed)") from None
    except FileNotFoundError:
        raise CourseError(f"{path} does not exist; `git checkout {path}` restores it") from None


def status(b: Break, root: Path) -> str:
    """'on', 'off', or 'edited' (the line is in neither form: changed by hand)."""
    text = read_source(root / b.target)
    n_old, n_new = text.count(b.old), text.count(b.new)
    if n_new == 1 and n_old == 0:
        return "on"
    if n_old == 1 and n_new == 0:
        return "off"
    return "edited"


def _damaged_state(p: Path, why: str) -> CourseError:
    return CourseError(f"{p} is damaged ({why}); the engine will not overwrite it. Restore it, or delete "
                       "it: the breaks stay as the source files say, but blind ones then read as open")


def read_state(root: Path) -> list[Exercise]:
    p = root / STATE
    if not p.exists():
        return []
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise _damaged_state(p, f"not valid JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("exercises", []), list):
        raise _damaged_state(p, 'expected {"exercises": [...]}')
    out = []
    for i, e in enumerate(data.get("exercises", [])):
        try:
            out.append(Exercise(**e))
        except TypeError as err:
            raise _damaged_state(p, f"exercise {i + 1}: {err}") from None
    return out


def write_state(root: Path, exercises: list[Exercise]) -> None:
    (root / STATE).parent.mkdir(parents=True, exist_ok=True)
    blob = {"exercises": [asdict(e) for e in exercises]}
    atomic_write(root / STATE, json.dumps(blob, indent=2, sort_keys=True).encode())


def reconcile(root: Path, catalog: dict[str, Break], exercises: list[Exercise]) -> list[Exercise]:
    """Finish what a killed switch left: an `applying` entry is done if its break is on, else dropped."""
    out, changed = [], False
    for e in exercises:
        if e.applying:
            b = e.resolve(catalog)
            changed = True
            if b is None or status(b, root) != "on":
                continue
            e.applying = False
        out.append(e)
    if changed:
        write_state(root, out)
    return out


@dataclass
class Tracked:
    """An exercise with its break and the state of its line."""

    exercise: Exercise
    brk: Break | None
    line: str  # on | off | edited | unknown (its break left the catalog)


def tracked(root: Path, catalog: dict[str, Break]) -> list[Tracked]:
    """Every exercise in the state (repaired first), with its line's status. Call under the lock."""
    out = []
    for e in reconcile(root, catalog, read_state(root)):
        b = e.resolve(catalog)
        out.append(Tracked(e, b, status(b, root) if b else "unknown"))
    return out


def _edited_message(b: Break, root: Path, catalog: dict[str, Break] | None, action: str) -> str:
    others = [o.id for o in (catalog or {}).values()
              if o.id != b.id and o.target == b.target and status(o, root) == "on"]
    why = f" (break {', '.join(others)} is on in the same file: switch it off first)" if others else ""
    return (f"cannot switch {action} {b.id}: the line it changes in {b.target} is not in its "
            f"{'original' if action == 'on' else 'broken'} form{why}. Nothing was changed and your edits are kept; "
            f"see `git diff {b.target}`, restore the line if you want the break, and try again")


def _refuse_on_edited(items: list[Tracked]) -> None:
    edited = [t for t in items if t.line == "edited"]
    if edited:
        which = ", ".join("a blind break" if t.exercise.blind else t.exercise.token for t in edited)
        raise CourseError(f"the line of {which} was changed by hand and is neither broken nor original; a new "
                          "break would go on top of a hand-edited tree. Finish that exercise first (fix it, or "
                          "`just break off --all`, which says what to restore), then try again")


def _next_blind_token(root: Path, items: list[Tracked], learner: str | None) -> str:
    used = {t.exercise.token for t in items}
    if learner:
        used |= set(learners.read_progress(root, learner)["given"])
    n = 1
    while f"blind-{n}" in used:
        n += 1
    return f"blind-{n}"


def switch_on(b: Break, root: Path, learner: str | None = None, blind: bool = False,
              catalog: dict[str, Break] | None = None) -> Exercise:
    """Put break b into its target file and record the exercise (for `learner`, if given)."""
    catalog = catalog if catalog is not None else {b.id: b}
    with exclusive(root):
        items = tracked(root, catalog)
        _refuse_on_edited(items)
        if any(t.exercise.blind for t in items):
            raise CourseError("a blind break is given in this checkout; finish it (or `just break off --all`) "
                              "before switching another one on")
        st = status(b, root)
        if st == "on":
            raise CourseError(f"{b.id} is already on (`just break off {b.id}` switches it off)")
        if st == "edited":
            raise CourseError(_edited_message(b, root, catalog, "on"))
        path = root / b.target
        before = path.read_bytes()
        after = before.decode("utf-8").replace(b.old, b.new, 1).encode("utf-8")
        if blind:
            salt = secrets.token_hex(8)
            ex = Exercise(_next_blind_token(root, items, learner), True, b.phase, learner, _sha(before),
                          learners.now(), salt=salt, id_hash=id_hash(salt, b.id), applying=True)
        else:
            ex = Exercise(b.id, False, b.phase, learner, _sha(before), learners.now(), id=b.id, applying=True)
        exercises = [t.exercise for t in items if t.exercise.token != ex.token]
        with hold_signals():
            write_state(root, exercises + [ex])  # 1. the state knows first (a blind break is never shown)
            try:
                atomic_write(path, after)  # 2. the break
            except CourseError:
                write_state(root, exercises)  # the file could not be written: nothing was given
                raise
            ex.applying = False
            write_state(root, exercises + [ex])  # 3. done
            if learner:
                learners.record_given(root, learner, ex.token, ex.progress_entry())
    return ex


def _off(b: Break, root: Path, items: list[Tracked]) -> bool:
    """Restore b's line (caller holds the lock and signals); True when the file is byte-identical to before."""
    path = root / b.target
    after = path.read_bytes().decode("utf-8").replace(b.new, b.old, 1).encode("utf-8")
    mine = [t.exercise for t in items if t.brk is not None and t.brk.id == b.id]
    for e in mine:  # the learner's progress first: a kill after it still grades as "switched off"
        if e.learner:
            learners.record_switched_off(root, e.learner, e.token)
    atomic_write(path, after)
    write_state(root, [t.exercise for t in items if t.exercise not in mine])
    return any(e.sha_before == _sha(after) for e in mine)


def switch_off(b: Break, root: Path, catalog: dict[str, Break] | None = None) -> bool:
    """Restore the pristine line; True when the file is byte-identical to before the break."""
    catalog = catalog if catalog is not None else {b.id: b}
    with exclusive(root):
        items = tracked(root, catalog)
        if any(t.exercise.blind and t.exercise.phase == b.phase for t in items):
            raise CourseError(f"a blind break of phase {b.phase} is given: `just break off --all` ends it (and says "
                              "what it switched off)")
        st = status(b, root)
        if st == "off":
            raise CourseError(f"{b.id} is not on (`just break status` shows what is on)")
        if st == "edited":
            raise CourseError(_edited_message(b, root, catalog, "off"))
        with hold_signals():
            return _off(b, root, items)


@dataclass
class OffReport:
    switched_off: list[str] = field(default_factory=list)  # ids, or "a blind break of phase N"
    closed: list[str] = field(default_factory=list)  # exercises whose line the learner had restored
    edited: list[str] = field(default_factory=list)  # exercises left alone: their line was edited by hand


def switch_off_all(root: Path, catalog: dict[str, Break]) -> OffReport:
    """Switch off every break that is on; close exercises whose line is back; report edited ones."""
    rep = OffReport()
    with exclusive(root):
        items = tracked(root, catalog)
        blind_ids = {t.brk.id for t in items if t.exercise.blind and t.brk}

        def name(b: Break) -> str:
            return f"a blind break of phase {b.phase}" if b.id in blind_ids else b.id

        with hold_signals():
            for b in catalog.values():
                if status(b, root) == "on":
                    _off(b, root, items)
                    items = [t for t in items if t.brk is None or t.brk.id != b.id]
                    rep.switched_off.append(name(b))
            keep = []
            for t in items:
                if t.line == "edited":
                    keep.append(t.exercise)
                    rep.edited.append(f"{name(t.brk)} (its line in {t.brk.target} was changed by hand: your "
                                      f"edits are kept and the exercise stays open; `git diff {t.brk.target}` "
                                      f"shows them; to close it, `git checkout {t.brk.target}` (the original "
                                      "file), then `just break off --all` again)")
                else:
                    rep.closed.append(name(t.brk) if t.brk else t.exercise.token)
            write_state(root, keep)
    return rep


def pick_blind(breaks: list[Break], root: Path, rng: random.Random | None = None) -> Break:
    candidates = [b for b in breaks if status(b, root) == "off"]
    if not candidates:
        raise CourseError("every break of that phase is already on or its line was edited; "
                          "`just break off --all` first")
    return (rng or random.SystemRandom()).choice(candidates)


SCRATCH = ("src", "tests", "labs", "justfile", "pyproject.toml")  # what a run of the course needs


def scratch_copy(root: Path, dest: Path, answers: bool = True) -> None:
    """Copy the course (package, tests, labs, justfile) into dest, for runs that must not touch the
    checkout: the verifier, the lab-output generator, the autograder. Saved outputs and caches stay behind;
    answers=False leaves the breaks (labs/*/breaks/: every break's line and fix) behind too, for runs of a
    learner's code (the autograder)."""
    patterns = ("__pycache__", "*.pyc", "outputs", "*.egg-info", ".*.tmp") + (() if answers else ("breaks",))
    ignore = shutil.ignore_patterns(*patterns)
    for name in SCRATCH:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, dest / name)
