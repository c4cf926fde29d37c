"""The instructor's classroom folder: what was handed out to whom, the grades, the gradebook.

    classroom/                       (default; git-ignored; --classroom DIR elsewhere)
        roster.json                  every handout: its learner (or the class), its exercises and
                                     their breaks, its commit; which handout each learner has
        handouts/<id>/<name>/        the handout repositories, and <name>.bundle to send out
        results/<learner>.json       the latest autograde of each learner's submission
        results/history/             every autograde ever run, never overwritten
        gradebook.csv                `just gradebook`: one row per learner and exercise

Nothing here is in a learner's hands: grades come from autograde results only, each with the
hash of the submission it graded.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .catalog import CourseError
from .guard import atomic_write
from .handout import Handout
from .learners import check_name

DEFAULT = Path("classroom")


def folder(root: Path, given: str | None) -> Path:
    return (root / given).resolve() if given else root / DEFAULT


def read_roster(classroom: Path) -> dict:
    p = classroom / "roster.json"
    if not p.exists():
        return {"handouts": {}, "learners": {}, "class": None}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        data = None
    if not (isinstance(data, dict) and isinstance(data.get("handouts"), dict)
            and isinstance(data.get("learners"), dict)):
        raise CourseError(f"{p} is damaged; it records every handout, so it is never rewritten from scratch: "
                          "restore it from a backup or fix the JSON by hand")
    return data


def write_roster(classroom: Path, roster: dict) -> None:
    classroom.mkdir(parents=True, exist_ok=True)
    atomic_write(classroom / "roster.json", json.dumps(roster, indent=2, sort_keys=True).encode())


def add_handout(roster: dict, h: Handout) -> None:
    roster["handouts"][h.id] = h.as_dict()
    if h.learner:
        roster["learners"][h.learner] = h.id
    else:
        roster["class"] = h.id


def handout_for(roster: dict, learner: str) -> Handout:
    hid = roster["learners"].get(learner) or roster.get("class")
    if not hid:
        raise CourseError(f"{learner} has no handout in the roster: `just handout ... --learners {learner}` "
                          "gives one (or `--class` one for everybody)")
    return Handout(**roster["handouts"][hid])


def save_result(classroom: Path, result: dict) -> Path:
    learner = check_name(result["learner"])
    hist = classroom / "results" / "history"
    hist.mkdir(parents=True, exist_ok=True)
    blob = json.dumps(result, indent=2, ensure_ascii=False).encode()
    stamp = result["graded_at"].replace(":", "").replace("-", "")
    atomic_write(hist / f"{learner}-{stamp}-{result['content_sha256'][:8]}.json", blob)
    atomic_write(classroom / "results" / f"{learner}.json", blob)
    return classroom / "results" / f"{learner}.json"


COLUMNS = ["learner", "exercise", "break", "title", "result", "reasons", "reversal", "detectors", "notes",
           "hints_self_reported", "diff_lines", "review", "submission_sha256", "graded_at", "seeds"]


def gradebook(classroom: Path, columns: list[str] | None = None) -> str:
    """CSV of the latest autograde result of every learner: one row per exercise (all COLUMNS, or these)."""
    columns = columns or COLUMNS
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        raise CourseError(f"unknown gradebook column(s) {', '.join(unknown)}; the columns are {', '.join(COLUMNS)}")
    keep = [COLUMNS.index(c) for c in columns]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    for path in sorted((classroom / "results").glob("*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        diff = f"+{r['diff']['added']}/-{r['diff']['removed']}"
        for x in r["exercises"] + r.get("not_given", []):
            row = [r["learner"], x["exercise"], x.get("break", ""), x.get("title", ""), x["result"],
                   "; ".join(x.get("reasons", [])), x.get("reversal", ""), x.get("detectors", ""),
                   "ok" if x.get("notes_ok") else "incomplete", x.get("hints_self_reported", ""), diff,
                   len(r.get("review", [])), r["content_sha256"], r["graded_at"], " ".join(map(str, r["seeds"]))]
            w.writerow([row[i] for i in keep])
    return buf.getvalue()
