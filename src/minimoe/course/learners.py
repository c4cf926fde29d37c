"""Learners in a self-study checkout: their folders, the active learner, and their progress.

learners/<name>/
    phase-NN/notes/breaks.md   the break records the learner writes (see notes.py)
    progress.json              written by the engine: the exercises given to the learner (a break
                               switched on for them, open or blind), whether the engine switched
                               one off again, and the hint rungs they opened
.minimoe/learner               the active learner of this checkout (git-ignored), set by
                               `just new-learner` and `just learner`

An exercise is keyed by its token: the break id when it was given openly, an opaque code
(`blind-1`, ...) when it was given blind, so the file never names a blind break. A damaged
file is refused with a message, never silently replaced: it holds the learner's history.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from .catalog import CourseError
from .guard import atomic_write
from .notes import notes_path, template

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
ACTIVE = Path(".minimoe") / "learner"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise CourseError(f"learner name {name!r} is not allowed: use 1-40 letters, digits, '-' or '_' "
                          "(no spaces, no '/', no '..', no line breaks), e.g. ana-garcia")
    return name


def learner_dir(root: Path, name: str) -> Path:
    return root / "learners" / check_name(name)


def phases(root: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in root.glob("labs/phase-*") if p.is_dir())


def new_learner(root: Path, name: str) -> list[Path]:
    d = learner_dir(root, name)
    if d.exists():
        raise CourseError(f"learner {name} already exists ({d}); nothing was changed. "
                          f"`just learner {name}` makes them the active learner")
    created = []
    for phase in phases(root):
        p = notes_path(root, name, phase)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(template(phase, name), encoding="utf-8")
        created.append(p)
    write_progress(root, name, {"given": {}, "hints": {}})
    set_active(root, name)
    return created


def set_active(root: Path, name: str) -> None:
    if not learner_dir(root, name).is_dir():
        raise CourseError(f"no learner {name}; `just new-learner {name}` creates one")
    (root / ACTIVE).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(root / ACTIVE, (name + "\n").encode())


def active(root: Path) -> str | None:
    p = root / ACTIVE
    if p.is_file():
        name = p.read_text(encoding="utf-8", errors="replace").strip()
        if NAME_RE.fullmatch(name) and learner_dir(root, name).is_dir():
            return name
    return None


def _damaged(p: Path, why: str) -> CourseError:
    return CourseError(f"{p} is damaged ({why}); the engine will not overwrite it. Restore it (e.g. "
                       f"`git checkout {p}`) or fix it by hand: "
                       '{"given": {"<token>": {...}}, "hints": {"<token>": [1, 2]}}')


def read_progress(root: Path, name: str) -> dict:
    """{"given": {token: entry}, "hints": {token: [rungs]}}; a missing file is an empty progress."""
    p = learner_dir(root, name) / "progress.json"
    if not p.exists():
        return {"given": {}, "hints": {}}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise _damaged(p, "not UTF-8") from None
    except ValueError as e:
        raise _damaged(p, f"not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise _damaged(p, f"expected an object, found {type(data).__name__}")
    given, hints = data.get("given", {}), data.get("hints", {})
    if not isinstance(given, dict) or not all(isinstance(v, dict) for v in given.values()):
        raise _damaged(p, "'given' must map each exercise to an object")
    if not isinstance(hints, dict) or not all(
            isinstance(v, list) and all(isinstance(r, int) and 1 <= r <= 3 for r in v) for v in hints.values()):
        raise _damaged(p, "'hints' must map each exercise to a list of rungs 1-3")
    return {"given": dict(given), "hints": dict(hints)}


def write_progress(root: Path, name: str, progress: dict) -> None:
    d = learner_dir(root, name)
    d.mkdir(parents=True, exist_ok=True)
    atomic_write(d / "progress.json", json.dumps(progress, indent=2, sort_keys=True).encode())


def record_given(root: Path, name: str, token: str, entry: dict) -> None:
    """Note that exercise `token` was given to the learner (entry: blind flag and, for a blind one,
    what identifies it without naming it)."""
    prog = read_progress(root, name)
    prog["given"][token] = {**entry, "at": now()}
    write_progress(root, name, prog)


def record_switched_off(root: Path, name: str, token: str) -> None:
    """The engine, not the learner, restored the line: `just grade` will not count it as a fix."""
    prog = read_progress(root, name)
    if token in prog["given"]:
        prog["given"][token]["switched_off"] = now()
        write_progress(root, name, prog)


def record_graded(root: Path, name: str, token: str, fixed: bool, passed: bool) -> None:
    """What `just grade` saw, the first time it saw it: the exercise fixed (its line changed and its detectors
    green; for a blind one, `just breaks --titles` then names its phase's breaks), and passed, with how many
    hints were open then (rungs opened after a pass, to read them, do not count against it)."""
    prog = read_progress(root, name)
    entry = prog["given"].get(token)
    if entry is None:
        return
    changed = False
    if fixed and "fixed_at" not in entry:
        entry["fixed_at"], changed = now(), True
    if passed and "passed_hints" not in entry:
        entry["passed_hints"], changed = len(set(prog["hints"].get(token, []))), True
    if changed:
        write_progress(root, name, prog)


def was_fixed(root: Path, name: str, token: str) -> bool:
    """Whether `just grade` has seen exercise `token` fixed (a damaged or missing progress file: no)."""
    try:
        return "fixed_at" in read_progress(root, name)["given"].get(token, {})
    except CourseError:
        return False


def next_hint(root: Path, name: str, token: str) -> tuple[int, bool]:
    """The rung to show next (1..3) and whether it is new; records it as opened."""
    prog = read_progress(root, name)
    seen = sorted(set(prog["hints"].get(token, [])))
    if len(seen) >= 3:
        return 3, False
    rung = len(seen) + 1
    prog["hints"][token] = seen + [rung]
    write_progress(root, name, prog)
    return rung, True
