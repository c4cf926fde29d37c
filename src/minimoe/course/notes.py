"""The learner's break record: learners/<name>/phase-NN/notes/breaks.md.

The record has the fields of the course's break template (bug-id, concept, symptom,
hidden_cause, hint_1..3, fix_diff), written as YAML inside a ```yaml block of the Markdown file
(or as a plain YAML file). It is read with a safe YAML loader, size-limited, and any problem comes
back as a message that names the file, the record and the field.

A record counts only when it says something: every field at least MIN_WORDS words, no two
fields the same text, and a symptom with a number in it (what was measured). A placeholder such
as `x` is reported as too short, not accepted.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from .textfiles import CourseError, parse_yaml, read_small_text

FIELDS = ("bug-id", "concept", "symptom", "hidden_cause", "hint_1", "hint_2", "hint_3", "fix_diff")
TEXT = FIELDS[1:]
MIN_WORDS = 3
FENCE_RE = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
WORD_RE = re.compile(r"\w+")

TEMPLATE = """# Phase {phase} — break records of {name}

One record per break you found, in the format of the course's break template. Fill every field
(a few words at least; the symptom with the numbers you measured), then check it with
`{check}`. Keep the YAML valid: the `- bug-id:` dash, two-space indentation, and quotes around
text that contains `: ` (or use `|` for several lines, as below).

```yaml
- bug-id: "{bug_id}"{bug_id_note}
  concept: ""         # the MoE idea the bug breaks
  symptom: |          # what you observed: telemetry numbers, the red test and its measurement
    ""
  hidden_cause: ""    # why it happens
  hint_1: ""          # the hint ladder you would give the next learner, vaguest first
  hint_2: ""
  hint_3: ""
  fix_diff: |         # the fix, as a diff or a sentence
    ""
```
"""


def template(phase: int, name: str, bug_id: str = "", check: str | None = None, codes: list[str] | None = None) -> str:
    """The notes file of one phase. codes: a handout's exercise codes (its learners have no `just breaks`)."""
    if bug_id:
        note = ""
    elif codes:
        note = f"          # the exercise's code: {', '.join(codes)}"
    else:
        note = f"          # the break's id from `just breaks --titles`, e.g. {phase}-01"
    return TEMPLATE.format(phase=phase, name=name, bug_id=bug_id, bug_id_note=note,
                           check=check or f"just grade {name}")


def notes_path(root: Path, name: str, phase: int) -> Path:
    return root / "learners" / name / f"phase-{phase}" / "notes" / "breaks.md"


def _yaml_text(text: str) -> str:
    blocks = FENCE_RE.findall(text)
    return "\n".join(blocks) if blocks else text


def _blank(v) -> bool:
    return v is None or (isinstance(v, str) and v.strip() in ("", '""', "''"))


def read_records(path: Path) -> list[dict]:
    """The records in a notes file; CourseError names the first problem (file, record, field)."""
    where = f"notes {path}"
    if not path.exists():
        raise CourseError(f"{where}: missing; `just new-learner <name>` creates it from the template")
    text = read_small_text(path, "notes")
    data = parse_yaml(_yaml_text(text), where, aliases=False)
    if data is None:
        return []
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise CourseError(f"{where}: expected a list of records, each starting with `- bug-id:`")
    return data


def _words(text: str) -> list[str]:
    return [w.lower() for w in WORD_RE.findall(text)]


def copied_from(text: str, sources: tuple[str, ...], share: float = 0.8) -> str | None:
    """The source a text copies: one whose words make up at least `share` of the text's words, in order."""
    words = _words(text)
    for src in sources:
        sw = _words(src)
        if len(sw) >= MIN_WORDS and words and difflib.SequenceMatcher(None, words, sw, autojunk=False).ratio() >= share:
            return src
    return None


def check_record(rec: dict, where: str, course_text: tuple[str, ...] = ()) -> list[str]:
    """Problems with one record: missing, empty, non-text or placeholder fields, and fields that copy the
    course's own words about the break (`course_text`: its hint ladder, in every language)."""
    problems = []
    for f in FIELDS:
        if f not in rec:
            problems.append(f"{where}: field '{f}' is missing")
        elif not isinstance(rec[f], (str, int, float)) or isinstance(rec[f], bool):
            problems.append(f"{where}: field '{f}' must be text")
        elif _blank(rec[f]):
            problems.append(f"{where}: field '{f}' is empty")
        elif f in TEXT and len(WORD_RE.findall(str(rec[f]))) < MIN_WORDS:
            problems.append(f"{where}: field '{f}' is too short ({str(rec[f]).strip()[:20]!r}): "
                            f"write at least {MIN_WORDS} words")
    texts = [" ".join(WORD_RE.findall(str(rec[f]))).lower() for f in TEXT
             if isinstance(rec.get(f), (str, int, float)) and not _blank(rec.get(f))]
    if len(texts) > 1 and len(set(texts)) < len(texts):
        problems.append(f"{where}: some fields repeat the same text: each field answers its own question")
    symptom = rec.get("symptom")
    if isinstance(symptom, str) and not _blank(symptom) and not re.search(r"\d", symptom):
        problems.append(f"{where}: field 'symptom' has no number: write what you measured "
                        "(a telemetry value, a count, a test's measurement)")
    for f in TEXT:
        if isinstance(rec.get(f), str) and not _blank(rec[f]) and copied_from(rec[f], course_text):
            problems.append(f"{where}: field '{f}' copies the course's hint ladder: write what you saw and "
                            "think, in your own words")
    unknown = sorted(str(k) for k in set(rec) - set(FIELDS))
    if unknown:
        problems.append(f"{where}: unknown field(s) {', '.join(unknown)} (the fields are {', '.join(FIELDS)})")
    return problems


def record_for(records: list[dict], bid: str) -> dict | None:
    for r in records:
        if str(r.get("bug-id", "")).strip() == bid:
            return r
    return None


def bug_ids(records: list[dict]) -> list[str]:
    return [str(r.get("bug-id")).strip() for r in records if not _blank(r.get("bug-id"))]
