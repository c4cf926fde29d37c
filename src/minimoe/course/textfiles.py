"""Small text files the course reads from its users: safely, with a one-line message on any problem.

Break files, notes, seeds and outputs lists are YAML written by people: a file is read only if it
is a regular file of at most MAX_YAML_BYTES, as UTF-8, with yaml.safe_load (no tags such as
!!python/object), and every problem becomes a CourseError that names the file and the fix.
This module is also shipped, unchanged, in learners' handouts (their notes checker uses it).
"""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

MAX_YAML_BYTES = 256 * 1024


class CourseError(Exception):
    """A user-facing problem with a one-line message that names it and its fix."""


def read_small_text(path: Path, what: str, limit: int = MAX_YAML_BYTES) -> str:
    """A small UTF-8 text file, read safely: a regular file only (not a folder, a device or a link to
    one), at most `limit` bytes; any problem is a CourseError naming the file and the fix."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CourseError(f"{what} {path}: no such file") from None
    if not stat.S_ISREG(st.st_mode):
        raise CourseError(f"{what} {path}: not a regular file (a folder, a device, or a link to one); "
                          "replace it with a plain text file")
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise CourseError(f"{what} {path}: too large (limit {limit // 1024} KiB); keep it to plain short text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CourseError(f"{what} {path}: not UTF-8 text; save it as UTF-8") from None


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's safe loader (10x faster) where built


def safe_yaml(path: Path, what: str):
    """Load a YAML file safely: size-limited, no tags (!!python/object...), message on any error."""
    return parse_yaml(read_small_text(path, what), f"{what} {path}")


def parse_yaml(text: str, where: str, aliases: bool = True):
    """YAML text to plain values; aliases=False (text from learners: notes) refuses `*name` references,
    with which a few hundred bytes can expand to gigabytes."""
    try:
        if not aliases and any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=SAFE_LOADER)):
            raise CourseError(f"{where}: YAML aliases (*name) are not allowed here; write each value out")
        return yaml.load(text, Loader=SAFE_LOADER)
    except yaml.constructor.ConstructorError:
        raise CourseError(f"{where}: YAML tags (like !!python/object) are not allowed; write plain values") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise CourseError(f"{where}: not valid YAML{at}: {problem}. Check the indentation and quote "
                          "text that contains ': ' or starts with a special character") from None
