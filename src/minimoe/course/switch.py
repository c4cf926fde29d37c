"""Switching breaks on and off in the real source files, safely.

A break is *on* when its target file holds the broken line (`new`) and not the pristine one
(`old`); *off* when it holds the pristine line. That is read from the file itself every time,
so the state can never disagree with the code. Anything else means the line was edited by hand,
and the engine refuses to touch it: a learner's edits are never overwritten.

Writes are atomic (a temp file in the same folder, then rename) and Ctrl-C is held back until
the write and the state update are both done, so an interrupted `break on` never leaves a
half-written file. The state file (.minimoe/state.json, git-ignored) keeps only what the files
cannot say: which breaks are blind, who switched them on, and the file's hash before the break,
so `off` can say whether it restored the exact original bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from .catalog import Break, CourseError

STATE = Path(".minimoe") / "state.json"


@contextlib.contextmanager
def hold_interrupts():
    """Defer Ctrl-C (SIGINT) until the block is done; re-raise it afterwards."""
    caught = []
    try:
        previous = signal.signal(signal.SIGINT, lambda *a: caught.append(a))
    except ValueError:  # not the main thread: nothing to hold
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt


def atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_state(root: Path) -> dict:
    p = root / STATE
    if not p.is_file():
        return {"breaks": {}}
    try:
        state = json.loads(p.read_text(encoding="utf-8"))
        state.setdefault("breaks", {})
        return state
    except (ValueError, AttributeError):
        return {"breaks": {}}  # a damaged state file only loses blind flags; the files say what is on


def write_state(root: Path, state: dict) -> None:
    (root / STATE).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(root / STATE, json.dumps(state, indent=2, sort_keys=True).encode())


def status(b: Break, root: Path) -> str:
    """'on', 'off', or 'edited' (the line is in neither form: changed by hand)."""
    text = (root / b.target).read_text(encoding="utf-8")
    n_old, n_new = text.count(b.old), text.count(b.new)
    if n_new == 1 and n_old == 0:
        return "on"
    if n_old == 1 and n_new == 0:
        return "off"
    return "edited"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _edited_message(b: Break, root: Path, catalog: dict[str, Break] | None, action: str) -> str:
    others = [o.id for o in (catalog or {}).values()
              if o.id != b.id and o.target == b.target and status(o, root) == "on"]
    why = f" (break {', '.join(others)} is on in the same file: switch it off first)" if others else ""
    return (f"cannot switch {action} {b.id}: the line it changes in {b.target} is not in its "
            f"{'original' if action == 'on' else 'broken'} form{why}. Nothing was changed and your edits are kept; "
            f"see `git diff {b.target}`, restore the line if you want the break, and try again")


def switch_on(b: Break, root: Path, learner: str | None = None, blind: bool = False,
              catalog: dict[str, Break] | None = None) -> None:
    st = status(b, root)
    if st == "on":
        raise CourseError(f"{b.id} is already on (`just break off {b.id}` switches it off)")
    if st == "edited":
        raise CourseError(_edited_message(b, root, catalog, "on"))
    path = root / b.target
    before = path.read_bytes()
    after = before.decode("utf-8").replace(b.old, b.new, 1).encode("utf-8")
    state = read_state(root)
    state["breaks"][b.id] = {"blind": blind, "learner": learner, "sha_before": _sha(before),
                             "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with hold_interrupts():
        atomic_write(path, after)
        write_state(root, state)


def switch_off(b: Break, root: Path, catalog: dict[str, Break] | None = None) -> bool:
    """Restore the pristine line; True when the file is byte-identical to before the break."""
    st = status(b, root)
    if st == "off":
        raise CourseError(f"{b.id} is not on (`just break status` shows what is on)")
    if st == "edited":
        raise CourseError(_edited_message(b, root, catalog, "off"))
    path = root / b.target
    after = path.read_bytes().decode("utf-8").replace(b.new, b.old, 1).encode("utf-8")
    state = read_state(root)
    entry = state["breaks"].pop(b.id, {})
    with hold_interrupts():
        atomic_write(path, after)
        write_state(root, state)
    return entry.get("sha_before") == _sha(after)


def pick_blind(breaks: list[Break], root: Path, rng: random.Random | None = None) -> Break:
    candidates = [b for b in breaks if status(b, root) == "off"]
    if not candidates:
        raise CourseError("every break of that phase is already on or its line was edited; "
                          "`just break off --all` first")
    return (rng or random.SystemRandom()).choice(candidates)


SCRATCH = ("src", "tests", "labs", "justfile", "pyproject.toml")  # what a run of the course needs


def scratch_copy(root: Path, dest: Path) -> None:
    """Copy the course (package, tests, labs, justfile) into dest, for runs that must not touch the
    checkout: the verifier and the lab-output generator. Saved outputs and caches are left behind."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "outputs", "*.egg-info")
    for name in SCRATCH:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, dest / name)
