"""Fixtures of the course's own tests: scratch copies of the course, never the checkout itself.

A scratch repository is the course as shipped: every break that happens to be on in the checkout
is switched back off in the copy, so these tests give the same answers whatever a learner or an
instructor has switched on (they never go red because of a break).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from minimoe.course.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("src", "tests", "labs", "justfile", "pyproject.toml", ".gitignore")
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert out.returncode == 0, out.stderr
    return out.stdout


def make_repo(dest: Path) -> Path:
    # the labs' saved outputs and plots are read from the checkout, never from a scratch copy: left out, the
    # copy each test makes is a third of the size
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".*.tmp", "outputs", "*.png")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, dest / name)
    for b in load_catalog(dest).values():  # pristine: whatever is on in the checkout is off here
        p = dest / b.target
        text = p.read_text(encoding="utf-8")
        if b.new in text and b.old not in text:
            p.write_text(text.replace(b.new, b.old, 1), encoding="utf-8")
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "course")
    git(dest, "repack", "-a", "-d", "-q")  # one pack, not a file per object: each test's copy is ~300 files fewer
    return dest


@pytest.fixture(scope="session")
def _pristine_repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("pristine") / "course")


@pytest.fixture
def repo(tmp_path, _pristine_repo):
    """A scratch copy of the course (src, tests, labs, justfile), pristine, as a git repository.

    Built once per session and copied (with its .git) for each test: a copy is faster than a commit."""
    return Path(shutil.copytree(_pristine_repo, tmp_path / "course", symlinks=True))


@pytest.fixture
def catalog(repo):
    return load_catalog(repo)


@pytest.fixture
def in_repo(repo, monkeypatch):
    """Run the course CLI inside the scratch copy."""
    monkeypatch.chdir(repo)
    return repo
