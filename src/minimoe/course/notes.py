"""The learner's break record: learners/<name>/phase-NN/notes/breaks.md.

The record has the fields of the seed's break template (bug-id, concept, symptom, hidden_cause,
hint_1..3, fix_diff), written as YAML inside a ```yaml block of the Markdown file (or as a
plain YAML file). It is read with yaml.safe_load, size-limited, and any problem comes back as a
message that names the file, the record and the field.
"""

from __future__ import annotations

import re
from pathlib import Path

from .catalog import MAX_YAML_BYTES, CourseError, parse_yaml, safe_yaml  # noqa: F401  (safe_yaml is re-exported for callers)

FIELDS = ("bug-id", "concept", "symptom", "hidden_cause", "hint_1", "hint_2", "hint_3", "fix_diff")
FENCE_RE = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)

TEMPLATE = """# Phase {phase} — break records of {name}

One record per break you found, in the format of the course's break template. Fill every field,
then run `just grade {name}`. Keep the YAML valid: the `- bug-id:` dash, two-space indentation,
and quotes around text that contains `: ` (or use `|` for several lines, as below).

```yaml
- bug-id: ""          # the break's id from `just breaks`, e.g. {phase}-01
  concept: ""         # the MoE idea the bug breaks
  symptom: |          # what you observed: telemetry numbers, the red detector test
    ""
  hidden_cause: ""    # why it happens
  hint_1: ""          # the hint ladder you would give the next learner, vaguest first
  hint_2: ""
  hint_3: ""
  fix_diff: |         # the fix, as a diff or a sentence
    ""
```
"""


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
    if not path.is_file():
        raise CourseError(f"{where}: missing; `just new-learner <name>` creates it from the template")
    if path.stat().st_size > MAX_YAML_BYTES:
        raise CourseError(f"{where}: too large (limit {MAX_YAML_BYTES // 1024} KiB); keep the records short")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CourseError(f"{where}: not UTF-8 text; save it as UTF-8") from None
    data = parse_yaml(_yaml_text(text), where)
    if data is None:
        return []
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise CourseError(f"{where}: expected a list of records, each starting with `- bug-id:`")
    return data


def check_record(rec: dict, where: str) -> list[str]:
    """Problems with one record: missing or empty fields, non-text values."""
    problems = []
    for f in FIELDS:
        if f not in rec:
            problems.append(f"{where}: field '{f}' is missing")
        elif not isinstance(rec[f], (str, int, float)) or _blank(rec[f]):
            problems.append(f"{where}: field '{f}' is empty" if _blank(rec[f]) else
                            f"{where}: field '{f}' must be text")
    unknown = sorted(set(rec) - set(FIELDS))
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
