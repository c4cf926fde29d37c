"""Learners: their folders, the active learner of this checkout, and their progress.

learners/<name>/
    phase-NN/notes/breaks.md   the break records the learner writes (see notes.py)
    progress.json              written by the engine: the breaks given to the learner and the
                               hint rungs they have seen
.minimoe/learner               the active learner of this checkout (git-ignored), set by
                               `just new-learner` and `just learner`
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from .catalog import CourseError
from .notes import TEMPLATE, notes_path
from .switch import atomic_write

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
ACTIVE = Path(".minimoe") / "learner"


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise CourseError(f"learner name {name!r} is not allowed: use 1-40 letters, digits, '-' or '_' "
                          "(no spaces, no '/', no '..'), e.g. ana-garcia")
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
        p.write_text(TEMPLATE.format(phase=phase, name=name), encoding="utf-8")
        created.append(p)
    write_progress(root, name, {"given": {}, "hints": {}})
    set_active(root, name)
    return created


def set_active(root: Path, name: str) -> None:
    if not learner_dir(root, name).is_dir():
        raise CourseError(f"no learner {name}; `just new-learner {name}` creates one")
    (root / ACTIVE).parent.mkdir(parents=True, exist_ok=True)
    (root / ACTIVE).write_text(name + "\n", encoding="utf-8")


def active(root: Path) -> str | None:
    p = root / ACTIVE
    if p.is_file():
        name = p.read_text(encoding="utf-8").strip()
        if NAME_RE.match(name) and learner_dir(root, name).is_dir():
            return name
    return None


def read_progress(root: Path, name: str) -> dict:
    p = learner_dir(root, name) / "progress.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        data = {}
    return {"given": dict(data.get("given", {})), "hints": dict(data.get("hints", {}))}


def write_progress(root: Path, name: str, progress: dict) -> None:
    d = learner_dir(root, name)
    d.mkdir(parents=True, exist_ok=True)
    atomic_write(d / "progress.json", json.dumps(progress, indent=2, sort_keys=True).encode())


def record_given(root: Path, name: str, bid: str, blind: bool) -> None:
    prog = read_progress(root, name)
    prog["given"].setdefault(bid, {"blind": blind, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    write_progress(root, name, prog)


def next_hint(root: Path, name: str, bid: str) -> tuple[int, bool]:
    """The rung to show next (1..3) and whether it is new; records it as seen."""
    prog = read_progress(root, name)
    seen = sorted(set(prog["hints"].get(bid, [])))
    if len(seen) >= 3:
        return 3, False
    rung = len(seen) + 1
    prog["hints"][bid] = seen + [rung]
    write_progress(root, name, prog)
    return rung, True
