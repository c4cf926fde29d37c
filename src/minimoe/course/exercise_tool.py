"""The learner's side of a classroom handout: hints, notes, submission (`python -m exercise ...`).

A handout (handout.py) ships this module as `exercise/__main__.py`, beside `exercise/notes.py`,
`exercise/textfiles.py` and `exercise/exercises.json`: the exercises' codes and, for guided ones,
their titles, plus the hint ladders (encoded, so that a rung is not read by accident before it is
asked for). It knows nothing else: no break's cause, fix or original line.

    hint [CODE] [--lang es] [--rung N]   the next rung of an exercise's ladder (recorded, self-reported)
    new-learner NAME                      notes templates under learners/NAME/ (class handouts)
    notes [NAME]                          check your notes records: complete and valid YAML
    submit [--out FILE]                   commit your work and pack it as a git bundle for your instructor

The rungs you open are written to exercise/hints-opened.json; the autograder reports them as
self-reported hint use (they do not lower a grade).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
import sys
from pathlib import Path

from .notes import check_record, notes_path, read_records, record_for, template
from .textfiles import CourseError

HERE = Path(__file__).resolve().parent
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


def encode_rung(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_rung(blob: str) -> str:
    return base64.b64decode(blob.encode("ascii")).decode("utf-8")


def _load(folder: Path = HERE) -> dict:
    try:
        return json.loads((folder / "exercises.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CourseError(f"exercise/exercises.json cannot be read ({e}); restore it with "
                          "`git checkout exercise/exercises.json`") from None


def _exercise(data: dict, code: str | None) -> dict:
    codes = [x["code"] for x in data["exercises"]]
    if code is None:
        if len(codes) != 1:
            raise CourseError(f"this handout has {len(codes)} exercises: name one, e.g. `just hint {codes[0]}` "
                              f"(codes: {', '.join(codes)})")
        code = codes[0]
    for x in data["exercises"]:
        if x["code"] == code:
            return x
    raise CourseError(f"no exercise {code!r} in this handout; its exercises are {', '.join(codes)}")


def _opened_path(folder: Path) -> Path:
    return folder / "hints-opened.json"


def read_opened(folder: Path = HERE) -> dict[str, list[int]]:
    p = _opened_path(folder)
    if not p.exists():
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
            return {str(k): sorted({int(r) for r in v if r in (1, 2, 3)}) for k, v in data.items()}
    except (ValueError, TypeError):
        pass
    raise CourseError(f"{p} is damaged; restore it with `git checkout {p.relative_to(folder.parent)}` "
                      'or write {"X1": [1, 2]}')


def cmd_hint(args, folder: Path = HERE) -> int:
    data = _load(folder)
    x = _exercise(data, args.code)
    opened = read_opened(folder)
    seen = opened.get(x["code"], [])
    if args.rung:
        if args.rung not in (1, 2, 3):
            raise CourseError("--rung is 1, 2 or 3")
        rung = args.rung
    else:
        rung = min(len(seen) + 1, 3)
    if rung not in seen:
        opened[x["code"]] = sorted(set(seen) | {rung})
        _opened_path(folder).write_text(json.dumps(opened, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    hints = x["hints"].get(args.lang) or x["hints"]["en"]
    print(f"hint {rung}/3 for {x['code']}: {decode_rung(hints[rung - 1])}")
    if len(seen) >= 3 and not args.rung:
        print("(that was the last rung)")
    return 0


def _root(folder: Path) -> Path:
    return folder.parent


def cmd_new_learner(args, folder: Path = HERE) -> int:
    if not NAME_RE.fullmatch(args.name or ""):
        raise CourseError(f"learner name {args.name!r} is not allowed: use 1-40 letters, digits, '-' or '_'")
    data, root = _load(folder), _root(folder)
    for phase in data["phases"]:
        p = notes_path(root, args.name, phase)
        if p.exists():
            raise CourseError(f"{p.relative_to(root)} already exists; nothing was changed")
    for phase in data["phases"]:
        p = notes_path(root, args.name, phase)
        p.parent.mkdir(parents=True, exist_ok=True)
        codes = [x["code"] for x in data["exercises"] if x["phase"] == phase]
        p.write_text(template(phase, args.name, codes[0] if len(codes) == 1 else "", check="just notes",
                              codes=codes), encoding="utf-8")
        print(f"created {p.relative_to(root)}")
    return 0


def cmd_notes(args, folder: Path = HERE) -> int:
    data, root = _load(folder), _root(folder)
    names = [args.name] if args.name else sorted(p.name for p in (root / "learners").glob("*") if p.is_dir())
    if not names:
        raise CourseError("no notes yet: `just new-learner <your name>` creates them")
    problems = []
    for name in names:
        for x in data["exercises"]:
            p = notes_path(root, name, x["phase"])
            where = f"{p.relative_to(root)}"
            try:
                rec = record_for(read_records(p), x["code"])
            except CourseError as e:
                problems.append(str(e))
                continue
            problems += check_record(rec, f"{where}, record {x['code']}") if rec else [
                f"{where}: no record with bug-id: {x['code']}"]
    for p in problems:
        print(p)
    print("notes: complete" if not problems else f"notes: {len(problems)} problem(s)")
    return 0 if not problems else 1


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def cmd_submit(args, folder: Path = HERE) -> int:
    data, root = _load(folder), _root(folder)
    if _git(root, "rev-parse", "--git-dir").returncode:
        raise CourseError("this folder is not a git repository: send your instructor the folder (or a zip of it)")
    _git(root, "add", "-A")
    if _git(root, "diff", "--cached", "--quiet").returncode:
        done = _git(root, "-c", "user.name=learner", "-c", "user.email=learner@minimoe.invalid",
                    "commit", "-q", "-m", "Submission")
        if done.returncode:
            raise CourseError(f"git commit failed: {done.stderr.strip()[:300]}")
    out = Path(args.out) if args.out else root.parent / f"{data.get('learner') or root.name}.bundle"
    made = _git(root, "bundle", "create", str(out.resolve()), "--all")
    if made.returncode:
        raise CourseError(f"git bundle failed: {made.stderr.strip()[:300]}")
    print(f"wrote {out}: send this file to your instructor (your work is also committed here)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="exercise", description="Your exercises: hints, notes, submission.")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("hint", help="the next rung of an exercise's hint ladder")
    s.add_argument("code", nargs="?")
    s.add_argument("--lang", choices=("en", "es"), default="en")
    s.add_argument("--rung", type=int)
    s = sub.add_parser("new-learner", help="create your notes templates")
    s.add_argument("name")
    s = sub.add_parser("notes", help="check your notes records")
    s.add_argument("name", nargs="?")
    s = sub.add_parser("submit", help="commit your work and pack it as a git bundle")
    s.add_argument("--out")
    return p


COMMANDS = {"hint": cmd_hint, "new-learner": cmd_new_learner, "notes": cmd_notes, "submit": cmd_submit}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.cmd](args)
    except CourseError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
