"""What the claim tests of every phase share: reading an output and a page, and a run's step lines.

`out` reads an output (a fresh run of it, where `just docs-outputs --check` runs the claim tests on
another machine's outputs); `saved` reads the page's own copy, for a number a sentence quotes;
`Pages(phase).says` asks that a quote be on the English page and on its Spanish twin.
"""

from __future__ import annotations

import re
from pathlib import Path

from minimoe.course.outputs_read import read_output, saved_output

ROOT = Path(__file__).resolve().parents[2]
# one step line of `just moe-train`: step, main, aux, cv% of the worst layer, that layer, its counts, drops
STEP_RE = re.compile(r"^step=\s*(\d+)\s+main=([\d.]+)\s+aux=([\d.]+)\s+cv=\s*(\d+)% L(\d)\s+"
                     r"expert_counts=\[([\d\s]+)\](?:\s+dropped=\[([^\]]*)\])?")


def out(name: str) -> str:
    return read_output(ROOT, name)


def saved(name: str) -> str:
    return saved_output(ROOT, name)


def step_lines(text: str, name: str) -> list[dict]:
    """The step lines of a run's output, one dict each (dropped: the percentages, when printed)."""
    rows = []
    for line in text.splitlines():
        m = STEP_RE.match(line)
        if m:
            rows.append({"step": int(m.group(1)), "main": float(m.group(2)), "aux": float(m.group(3)),
                         "cv": float(m.group(4)), "layer": int(m.group(5)),
                         "counts": [int(c) for c in m.group(6).split()],
                         "dropped": [float(d) for d in re.findall(r"([\d.]+)%", m.group(7) or "")]})
    assert rows, f"no step lines in {name}"
    return rows


class Pages:
    """The pages of one phase folder (labs/<phase>/<name>.md and .es.md)."""

    def __init__(self, folder: str):
        self.dir = ROOT / "labs" / folder

    def page(self, name: str, suffix: str = ".md") -> str:
        """A page of the phase, its lines joined: a quote may run over a line break."""
        return " ".join((self.dir / f"{name}{suffix}").read_text(encoding="utf-8").split())

    def says(self, name: str, en: str, es: str | None = None) -> None:
        """The English page says `en` and its Spanish twin `es` (by default the same text: a number)."""
        assert en in self.page(name), f"{name}.md does not say {en!r}"
        es = es if es is not None else en
        assert es in self.page(name, ".es.md"), f"{name}.es.md does not say {es!r}"
