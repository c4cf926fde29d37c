"""Guarding the engine's writes: one lock around every read-modify-write, signals held until done.

Every command that changes a source file, `.minimoe/state.json` or a learner's `progress.json`
does so inside `exclusive(root)`: an advisory lock on `.minimoe/lock` (fcntl.flock), so two
`just break on` started together run one after the other, and the second sees what the first
did. A command that only reads (the listing, `break status`, `hint` before it records a rung)
takes the same lock, so it never sees a switch half-done.

Inside the lock, `hold_signals()` defers Ctrl-C (SIGINT), SIGTERM and SIGHUP until the writes
are done; the signal is then raised as `Interrupted`, and the command's caller reports what is
actually on. Only SIGKILL cannot be held: the writes are ordered so that a kill at any point
leaves a state the next command repairs (switch.py), and the temp files of an unfinished atomic
write are removed and reported by `clean_temp_files`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import time
from pathlib import Path

from .. import files
from .catalog import CourseError

LOCK = Path(".minimoe") / "lock"
HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TEMP_GLOB = ".*.tmp"  # the temp files of atomic writes: .<name>.<random>.tmp beside the file
TEMP_DIRS = ("src/minimoe", ".minimoe", "learners")


class Interrupted(KeyboardInterrupt):
    """A SIGINT, SIGTERM or SIGHUP, raised once the engine's writes were finished."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum, frame):
    raise Interrupted(signum)


def install_signal_handlers() -> None:
    """Make SIGTERM and SIGHUP behave like Ctrl-C (an Interrupted exception) in the main thread."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError):
            signal.signal(sig, _raise)


@contextlib.contextmanager
def hold_signals():
    """Defer SIGINT, SIGTERM and SIGHUP until the block is done; then raise the first as Interrupted."""
    caught: list[int] = []
    try:
        previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in HELD}
    except ValueError:  # not the main thread: nothing to hold
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if caught:
            raise Interrupted(caught[0])


@contextlib.contextmanager
def exclusive(root: Path, wait: float = 60.0):
    """Hold the engine's lock on `root` for the block; refuse with a message after `wait` seconds."""
    path = root / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() > deadline:
                    raise CourseError(f"another course command has held {LOCK} for {wait:.0f} s; wait for it "
                                      "to finish and try again (nothing was changed)") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def clean_temp_files(root: Path) -> list[str]:
    """Remove the temp files an interrupted atomic write left behind; return their paths."""
    removed = []
    for d in TEMP_DIRS:
        base = root / d
        if not base.is_dir():
            continue
        for p in base.rglob(TEMP_GLOB):
            if p.is_file() and not p.is_symlink():
                p.unlink(missing_ok=True)
                removed.append(p.relative_to(root).as_posix())
    return sorted(removed)



def atomic_write(path: Path, data: bytes) -> None:
    """minimoe.files.atomic_write, with a one-line refusal where the file or its folder cannot be written."""
    try:
        files.atomic_write(path, data)
    except PermissionError:
        raise CourseError(f"cannot write {path}: permission denied (is it read-only or immutable?); "
                          "nothing was changed") from None
