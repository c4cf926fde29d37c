"""Lab outputs that cannot go stale: every output block on a lab page comes from a real run.

Each phase folder has an outputs.yaml listing the runs its pages show:

    - name: 36-01-train                 the block's name
      command: moe-train --steps 500    a justfile recipe and its arguments, as a learner types it
      break: 36-01                      (optional) switched on first, in a scratch copy
      lines: "^step=|^val_loss"         (optional) keep only the lines matching this regex
      image: runs/latest/load.png       (optional) a file the run writes, copied to outputs/<name>.png
      long: true                        (optional) the run takes minutes: CI's slow tests skip it

A page marks where a block goes:

    <!-- output: 36-01-train -->
    ...filled in by `just docs-outputs`...
    <!-- /output -->

`just docs-outputs` runs every command in a scratch copy of the course (the checkout is never
touched), writes labs/<phase>/outputs/<name>.txt, and rewrites the blocks of every page, English
and Spanish alike, from those files. `--check` runs the commands again and fails when any page
shows an output that a fresh run does not reproduce. CI re-runs every output except those marked
`long` (multi-seed sweeps that take minutes each); `just docs-outputs --check` re-runs them all,
and the claim tests (tests/course/test_claims_phaseNN.py) check the saved text of every one. Timings are left out
(lines starting `time:`, and pytest's "in 9.87s"), since no two runs agree on them.

A fresh run reproduces an output only on a machine whose float arithmetic gives the same bits, so
`just docs-outputs` also records the machine's numerics fingerprint (numerics.py) beside each
phase's outputs, and `--check` re-runs a phase only where this machine's fingerprint agrees; where
it does not, it says so (NOT COMPARED) instead of reporting every chaotic count as stale.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import numerics
from .catalog import CourseError, load_catalog, safe_yaml
from .switch import atomic_write, scratch_copy, switch_on

BLOCK_RE = re.compile(r"(<!-- output: ([\w.-]+) -->\n)(.*?)(<!-- /output -->)", re.S)
TIMING_RE = re.compile(r"^time: ")  # lines a run prints about its own speed
PYTEST_TIME_RE = re.compile(r" in \d+(?:\.\d+)?s\b")  # pytest's "2 failed in 9.87s": the duration is dropped
NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


@dataclass
class OutputSpec:
    name: str
    command: str
    phase_dir: Path
    brk: str | None = None
    lines: str | None = None
    image: str | None = None
    timeout: int = 900
    long: bool = False  # minutes of CPU: re-run by `just docs-outputs --check`, not by CI

    @property
    def txt(self) -> Path:
        return self.phase_dir / "outputs" / f"{self.name}.txt"


def load_specs(root: Path, phase: int | None = None) -> list[OutputSpec]:
    specs = []
    for f in sorted(root.glob("labs/phase-*/outputs.yaml")):
        pdir = f.parent
        if phase and not pdir.name.startswith(f"phase-{phase}-"):
            continue
        data = safe_yaml(f, "outputs file") or []
        for i, d in enumerate(data):
            if not isinstance(d, dict) or not {"name", "command"} <= set(d):
                raise CourseError(f"outputs file {f}: entry {i + 1} needs 'name' and 'command'")
            specs.append(OutputSpec(d["name"], d["command"], pdir, d.get("break"), d.get("lines"),
                                    d.get("image"), int(d.get("timeout", 900)), bool(d.get("long", False))))
    names = [s.name for s in specs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise CourseError(f"output names used twice: {', '.join(sorted(dup))}")
    return specs


def run_spec(root: Path, spec: OutputSpec, cache: Path, keep_image: bool = True) -> tuple[str, Path | None]:
    """Run one output's command in a fresh scratch copy; return its filtered text (and image path).
    keep_image: copy the image the run wrote into the phase's outputs (False when only checking)."""
    tmp = Path(tempfile.mkdtemp(prefix="minimoe-out-"))
    try:
        scratch_copy(root, tmp)
        if spec.brk:
            cat = load_catalog(tmp)
            if spec.brk not in cat:
                raise CourseError(f"output {spec.name}: unknown break {spec.brk}")
            switch_on(cat[spec.brk], tmp)
        env = {**os.environ, "PYTHONPATH": str(tmp / "src"), "MINIMOE_CACHE": str(cache), "COLUMNS": "400",
               "PYTHONHASHSEED": "0"}
        env.pop("MINIMOE_GROUPED_MM", None)
        proc = subprocess.run(["just", *shlex.split(spec.command)], cwd=tmp, env=env, capture_output=True,
                              text=True, timeout=spec.timeout)
        out = proc.stdout + (proc.stderr if proc.returncode else "")
        keep = re.compile(spec.lines) if spec.lines else None
        lines = [PYTEST_TIME_RE.sub("", ln.rstrip()) for ln in out.splitlines()
                 if not TIMING_RE.match(ln) and (keep is None or keep.search(ln))]
        text = f"$ just {spec.command}\n" + "\n".join(lines).strip("\n") + "\n"
        image = None
        if keep_image and spec.image and (tmp / spec.image).is_file():
            image = spec.phase_dir / "outputs" / f"{spec.name}.png"
            shutil.copy2(tmp / spec.image, image)
        return text, image
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def lab_pages(root: Path) -> list[Path]:
    """Every lab page, English and Spanish: a phase's own pages and its break pages (breaks/*.md)."""
    return sorted([*root.glob("labs/phase-*/*.md"), *root.glob("labs/phase-*/breaks/*.md")])


def fill_pages(root: Path, texts: dict[str, str], known: set[str] | None = None) -> list[Path]:
    """Rewrite the output blocks of every lab page (en and es) from the given texts. A block named in
    `known` (an outputs.yaml entry) with no text yet is left as it is; any other unknown name is an error."""
    known = set(texts) if known is None else known
    changed = []
    for page in lab_pages(root):
        src = page.read_text(encoding="utf-8")

        def sub(m, page=page):
            name = m.group(2)
            if name not in texts:
                if name in known:
                    return m.group(0)  # not generated yet (another phase): leave it for its own run
                raise CourseError(f"{page.relative_to(root)}: no output named {name!r} in outputs.yaml")
            return f"{m.group(1)}```text\n{texts[name]}```\n{m.group(4)}"

        new = BLOCK_RE.sub(sub, src)
        if new != src:
            atomic_write(page, new.encode("utf-8"))
            changed.append(page)
    return changed


def generate(root: Path, phase: int | None = None, only: str | None = None, echo=print) -> list[Path]:
    """Run the outputs (one phase's, or one by name) and fill the pages; record the machine's numerics
    fingerprint beside each phase's outputs, refusing to mix one phase's outputs from two machines."""
    specs = [s for s in load_specs(root, phase) if not only or s.name == only]
    if only and not specs:
        raise CourseError(f"no output named {only!r}")
    here = numerics.fingerprint()
    dirs = sorted({s.phase_dir for s in specs})
    made = numerics.recorded(specs[0].phase_dir) if only else None
    if made and (why := numerics.mismatch(specs[0].phase_dir, made, here)):
        raise CourseError(f"{why}. One output alone would mix two machines' numbers on its pages: "
                          f"regenerate the whole phase")
    with tempfile.TemporaryDirectory() as cache:
        for s in specs:
            echo(f"running {s.name}: just {s.command}" + (f"  (break {s.brk} on)" if s.brk else ""))
            t0 = time.perf_counter()
            text, _ = run_spec(root, s, Path(cache))
            echo(f"  {time.perf_counter() - t0:.0f} s")
            s.txt.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(s.txt, text.encode("utf-8"))
    for d in dirs:
        numerics.record(d, here)
    every = load_specs(root)
    texts = {s.name: s.txt.read_text(encoding="utf-8") for s in every if s.txt.is_file()}
    return fill_pages(root, texts, {s.name for s in every})


def differences(a: str, b: str, rel: float = 0.0) -> list[str]:
    """Lines where two outputs differ; with rel > 0, numbers within that relative tolerance count as equal."""
    diffs = []
    la, lb = a.splitlines(), b.splitlines()
    if len(la) != len(lb):
        diffs.append(f"{len(la)} lines vs {len(lb)} lines")
    for x, y in zip(la, lb):
        if x == y:
            continue
        nx, ny = NUMBER_RE.findall(x), NUMBER_RE.findall(y)
        same_shape = NUMBER_RE.sub("#", x) == NUMBER_RE.sub("#", y) and len(nx) == len(ny)
        close = same_shape and all(abs(float(p) - float(q)) <= rel * max(abs(float(p)), abs(float(q)), 1.0)
                                   for p, q in zip(nx, ny))
        if not (rel and close):
            diffs.append(f"page: {x}\nrun:  {y}")
    return diffs


def page_blocks(page: Path) -> dict[str, str]:
    """The output blocks a page shows, by name (the text inside the fence)."""
    blocks = {}
    for m in BLOCK_RE.finditer(page.read_text(encoding="utf-8")):
        body = m.group(3)
        inner = re.match(r"```text\n(.*)```\n$", body, re.S)
        blocks[m.group(2)] = inner.group(1) if inner else body
    return blocks


def check(root: Path, phase: int | None = None, fresh: bool = True, rel: float = 0.02, echo=print,
          skip_long: bool = False, not_compared: list | None = None) -> list[str]:
    """Problems: a page block that differs from its saved output, or (fresh) a saved output a new run
    does not reproduce (numbers within `rel` relative tolerance count as equal; skip_long: outputs
    marked `long` are not re-run). A phase whose outputs were made on a machine with other float
    arithmetic (numerics.py) is not re-run: why goes into `not_compared`."""
    specs = load_specs(root, phase)
    saved = {s.name: s.txt.read_text(encoding="utf-8") if s.txt.is_file() else None for s in specs}
    problems = [f"{s.txt.relative_to(root)} is missing: run `just docs-outputs`"
                for s in specs if saved[s.name] is None]
    for page in lab_pages(root):
        for name, shown in page_blocks(page).items():
            if name in saved and saved[name] is not None and shown != saved[name]:
                problems.append(f"{page.relative_to(root)}: block {name} differs from outputs/{name}.txt: "
                                "run `just docs-outputs`")
    if not fresh:
        return problems
    here, skip = numerics.fingerprint(), set()
    for d in sorted({s.phase_dir for s in specs}):
        made = numerics.recorded(d)
        if made is None:
            problems.append(f"{d.relative_to(root)}/outputs/{numerics.FILE} is missing (the machine its outputs "
                            f"were made on): run `just docs-outputs --phase {numerics.phase_number(d)}`")
        elif why := numerics.mismatch(d, made, here):
            skip.add(d)
            echo("NOT COMPARED " + why)
            if not_compared is not None:
                not_compared.append(why)
    with tempfile.TemporaryDirectory() as cache:
        for s in specs:
            if saved[s.name] is None or (skip_long and s.long) or s.phase_dir in skip:
                continue
            echo(f"re-running {s.name}: just {s.command}")
            text, _ = run_spec(root, s, Path(cache), keep_image=False)
            for d in differences(saved[s.name], text, rel):
                problems.append(f"{s.name}: a fresh run differs from the page:\n{d}")
    return problems


# ---------------------------------------------------------------- reading saved outputs (for claim tests)

def read_output(root: Path, name: str) -> str:
    """The saved text of output `name` (any phase)."""
    hits = list(root.glob(f"labs/phase-*/outputs/{name}.txt"))
    if not hits:
        raise CourseError(f"no saved output {name!r}: run `just docs-outputs`")
    return hits[0].read_text(encoding="utf-8")


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
