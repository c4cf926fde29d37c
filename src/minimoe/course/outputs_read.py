"""Reading the saved lab outputs: for the claim tests (tests/course/test_claims_phaseNN.py) and the plots.

`read_output(root, name)` is the text a page shows, from labs/<phase>/outputs/<name>.txt, unless
$MINIMOE_FRESH_OUTPUTS names a folder holding a fresh run of it (<name>.txt): `just docs-outputs --check`
sets it on a machine with other float arithmetic, so that the claim tests judge the sentences against
the numbers computed there. A test that checks a number a sentence quotes from the page reads
`saved_output` instead: a quote is checked against the page, and the fresh run against the page's
numbers by the tolerance of outputs_compare.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .catalog import CourseError

FRESH_ENV = "MINIMOE_FRESH_OUTPUTS"


def saved_output(root: Path, name: str) -> str:
    """The saved text of output `name` (any phase), as the page shows it."""
    hits = list(root.glob(f"labs/phase-*/outputs/{name}.txt"))
    if not hits:
        raise CourseError(f"no saved output {name!r}: run `just docs-outputs`")
    return hits[0].read_text(encoding="utf-8")


def read_output(root: Path, name: str) -> str:
    """Output `name`: a fresh run of it where $MINIMOE_FRESH_OUTPUTS has one, else the saved text."""
    fresh = os.environ.get(FRESH_ENV)
    if fresh and (Path(fresh) / f"{name}.txt").is_file():
        return (Path(fresh) / f"{name}.txt").read_text(encoding="utf-8")
    return saved_output(root, name)


def parse_table(text: str, first_col: str) -> list[dict]:
    """Rows of the whitespace-separated table whose header line starts with `first_col`."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cols = line.split()
        if cols and cols[0] == first_col:
            rows = []
            for row in lines[i + 1:]:
                cells = row.split()
                if len(cells) != len(cols):
                    break
                rows.append({c: _num(v) for c, v in zip(cols, cells)})
            return rows
    raise ValueError(f"no table with a first column {first_col!r}")


def parse_fields(text: str, line_prefix: str) -> dict[str, float]:
    """`key=value` pairs of the last line starting with line_prefix (e.g. 'val_loss', 'step=500')."""
    lines = [ln for ln in text.splitlines() if ln.startswith(line_prefix)]
    if not lines:
        raise ValueError(f"no line starting with {line_prefix!r}")
    return {k: _num(v) for k, v in re.findall(r"(\w+)=\s*(-?[\d.]+(?:e-?\d+)?)", lines[-1])}


def _num(v: str):
    try:
        return float(v)
    except ValueError:
        return v
