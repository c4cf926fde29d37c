"""Lab outputs that cannot go stale: every output block on a lab page comes from a real run.

Each phase folder has an outputs.yaml listing the runs its pages show:

    - name: 36-01-train                 the block's name
      command: moe-train --steps 500    a justfile recipe and its arguments, as a learner types it
      break: 36-01                      (optional) switched on first, in a scratch copy
      lines: "^step=|^val_loss"         (optional) keep only the lines matching this regex
      image: runs/latest/load.png       (optional) a file the run writes, copied to outputs/<name>.png
      plot: dashboard                   (optional) outputs/<name>.png drawn from the run's text (outputs_plots.py)
      long: true                        (optional) the run takes minutes: CI's slow tests skip it
      tolerance: {rel: 0.05, abs: 0.01} (optional) how far each number may move on a machine with other
                                        float arithmetic (outputs_compare.py); default rel 0.05, abs 0.001

A page marks where a block goes:

    <!-- output: 36-01-train -->
    ...filled in by `just docs-outputs`...
    <!-- /output -->

`just docs-outputs` runs every command in a scratch copy of the course (the checkout is never
touched), writes labs/<phase>/outputs/<name>.txt, and rewrites the blocks of every page, English
and Spanish alike, from those files. `--check` runs the commands again and fails when any page
shows an output that a fresh run does not reproduce. CI re-runs every output except those marked
`long` (multi-seed sweeps that take minutes each); `just docs-outputs --check` re-runs them all,
and the claim tests (tests/course/test_claims_phaseNN.py, reading outputs_read.py) check the saved text
of every one. Timings are left out
(lines starting `time:`, and pytest's "in 9.87s"), since no two runs agree on them.

A fresh run reproduces an output bit for bit only on a machine whose float arithmetic gives the same
bits, so `just docs-outputs` also records the machine's numerics fingerprint (numerics.py) beside each
phase's outputs. `--check` compares a phase recorded on this machine's arithmetic exactly; one recorded
elsewhere it re-runs all the same, compares every number within its output's stated tolerance, and runs
the phase's claim tests on the fresh outputs (outputs_compare.py), so that every machine compares
something real.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import numerics, outputs_plots
from .catalog import CourseError, load_catalog, safe_yaml
from .outputs_compare import EXACT, Tolerance, compare, parse_tolerance, run_claims
from .switch import atomic_write, scratch_copy, switch_on

BLOCK_RE = re.compile(r"(<!-- output: ([\w.-]+) -->\n)(.*?)(<!-- /output -->)", re.S)
TIMING_RE = re.compile(r"^time: ")  # lines a run prints about its own speed
PYTEST_TIME_RE = re.compile(r" in \d+(?:\.\d+)?s\b")  # pytest's "2 failed in 9.87s": the duration is dropped
JUST_ERROR_RE = re.compile(r"^error: recipe `[^`]+` failed on line \d+ with exit code \d+$")


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
    tolerance: Tolerance = field(default_factory=Tolerance)  # on a machine with other float arithmetic
    plot: str | None = None  # a kind of outputs_plots.py: outputs/<name>.png drawn from the text

    @property
    def png(self) -> Path:
        return self.phase_dir / "outputs" / f"{self.name}.png"

    @property
    def txt(self) -> Path:
        return self.phase_dir / "outputs" / f"{self.name}.txt"


def spec_files(root: Path) -> list[Path]:
    """Every outputs.yaml: one per phase folder, and docs/outputs.yaml for the site's other pages."""
    return [*sorted(root.glob("labs/phase-*/outputs.yaml")), *sorted(root.glob("docs/outputs.yaml"))]


def load_specs(root: Path, phase: int | None = None) -> list[OutputSpec]:
    specs = []
    for f in spec_files(root):
        pdir = f.parent
        if phase and not pdir.name.startswith(f"phase-{phase}-"):
            continue
        data = safe_yaml(f, "outputs file") or []
        for i, d in enumerate(data):
            if not isinstance(d, dict) or not {"name", "command"} <= set(d):
                raise CourseError(f"outputs file {f}: entry {i + 1} needs 'name' and 'command'")
            specs.append(OutputSpec(d["name"], d["command"], pdir, d.get("break"), d.get("lines"),
                                    d.get("image"), int(d.get("timeout", 900)), bool(d.get("long", False)),
                                    parse_tolerance(d.get("tolerance"), f"outputs file {f}: {d['name']}"),
                                    d.get("plot")))
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
        args = ["just", *shlex.split(spec.command)]
        proc = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True, timeout=spec.timeout)
        out = proc.stdout + (_program_stderr(args, tmp, env, proc.stderr) if proc.returncode else "")
        keep = re.compile(spec.lines) if spec.lines else None
        lines = [PYTEST_TIME_RE.sub("", ln.rstrip()) for ln in out.splitlines()
                 if not TIMING_RE.match(ln) and (keep is None or keep.search(ln))]
        text = f"$ just {spec.command}\n" + "\n".join(lines).strip("\n") + "\n"
        image = None
        if keep_image and spec.image and (tmp / spec.image).is_file():
            image = spec.png
            shutil.copy2(tmp / spec.image, image)
        return text, image
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _program_stderr(args: list[str], cwd: Path, env: dict, stderr: str) -> str:
    """A failed command's stderr without what `just` itself printed: the recipe line it echoes before
    running it (as `just --dry-run` prints it) and its closing `error: recipe ... failed` line."""
    echoed = subprocess.run([args[0], "--dry-run", *args[1:]], cwd=cwd, env=env, capture_output=True,
                            text=True).stderr.splitlines()
    lines = stderr.splitlines()
    for e in echoed:
        if e in lines:
            lines.remove(e)
    return "\n".join(ln for ln in lines if not JUST_ERROR_RE.match(ln)) + "\n"


def lab_pages(root: Path) -> list[Path]:
    """Every lab page, English and Spanish: a phase's own pages and its break pages (breaks/*.md)."""
    return sorted([*root.glob("labs/phase-*/*.md"), *root.glob("labs/phase-*/breaks/*.md"), *root.glob("docs/*.md")])


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
    took = {d: recorded_seconds(d) for d in dirs}
    with tempfile.TemporaryDirectory() as cache:
        for s in specs:
            echo(f"running {s.name}: just {s.command}" + (f"  (break {s.brk} on)" if s.brk else ""))
            t0 = time.perf_counter()
            text, _ = run_spec(root, s, Path(cache))
            took[s.phase_dir][s.name] = round(time.perf_counter() - t0, 1)
            echo(f"  {took[s.phase_dir][s.name]:.0f} s")
            s.txt.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(s.txt, text.encode("utf-8"))
            if s.plot:
                outputs_plots.draw(s.plot, text, s.png)
    for d in dirs:
        numerics.record(d, here)
        seconds = json.dumps(dict(sorted(took[d].items())), indent=1) + "\n"
        atomic_write(d / "outputs" / SECONDS_FILE, seconds.encode())
    every = load_specs(root)
    texts = {s.name: s.txt.read_text(encoding="utf-8") for s in every if s.txt.is_file()}
    return fill_pages(root, texts, {s.name for s in every})


SECONDS_FILE = "seconds.json"  # in labs/<phase>/outputs/: how long each output's command took when recorded


def recorded_seconds(phase_dir: Path) -> dict[str, float]:
    """{output name: seconds its command took when it was last recorded} for one phase ({} if none)."""
    f = phase_dir / "outputs" / SECONDS_FILE
    try:
        data = json.loads(f.read_text(encoding="utf-8")) if f.is_file() else {}
    except ValueError:
        phase = numerics.phase_number(phase_dir)
        raise CourseError(f"{f} is not valid JSON: run `just docs-outputs --phase {phase}`") from None
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def page_blocks(page: Path) -> dict[str, str]:
    """The output blocks a page shows, by name (the text inside the fence)."""
    blocks = {}
    for m in BLOCK_RE.finditer(page.read_text(encoding="utf-8")):
        body = m.group(3)
        inner = re.match(r"```text\n(.*)```\n$", body, re.S)
        blocks[m.group(2)] = inner.group(1) if inner else body
    return blocks


def check(root: Path, phase: int | None = None, fresh: bool = True, echo=print, skip_long: bool = False,
          max_seconds: float | None = None) -> list[str]:
    """Problems: a page block that differs from its saved output, or (fresh) a saved output a new run
    does not reproduce. A phase recorded on this machine's float arithmetic (numerics.py) is compared
    exactly; one recorded elsewhere number by number within each output's tolerance, and then its
    claim tests run on the fresh outputs. skip_long: outputs marked `long` are not re-run; max_seconds:
    nor those whose command took longer than that when recorded (outputs/seconds.json), so that CI
    re-runs the quick ones; `just docs-outputs --check` re-runs every one."""
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
    here = numerics.fingerprint()
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as fresh_dir:
        for d in sorted({s.phase_dir for s in specs}):
            made = numerics.recorded(d)
            if made is None:
                problems.append(f"{d.relative_to(root)}/outputs/{numerics.FILE} is missing (the machine its "
                                f"outputs were made on): run `just docs-outputs --phase {numerics.phase_number(d)}`")
                continue
            took = recorded_seconds(d)
            mine = [s for s in specs if s.phase_dir == d and saved[s.name] is not None and not (skip_long and s.long)]
            if max_seconds is not None:
                over = [s.name for s in mine if took.get(s.name, float("inf")) > max_seconds]
                mine = [s for s in mine if s.name not in over]
                if over:
                    echo(f"{d.name}: not re-run here ({len(over)} took over {max_seconds:g} s when recorded; "
                         f"`just docs-outputs --check` re-runs them): {', '.join(over)}")
            problems += _check_phase(root, d, mine, saved, made, here, Path(cache), Path(fresh_dir), echo)
    return problems


def _check_phase(root, d, specs, saved, made, here, cache, fresh_dir, echo) -> list[str]:
    exact = numerics.mismatch(d, made, here) is None
    if not exact:
        echo(f"{d.name}: recorded on other float arithmetic (numerics {made.get('hash')}, {made.get('cpu')}; "
             f"here {here['hash']}, {here['cpu']}): each number is compared within its output's tolerance "
             "(outputs.yaml), then the phase's claim tests run on the fresh outputs")
    problems, numbers, worst = [], 0, (0.0, "", "", 0.0)
    for s in specs:
        echo(f"re-running {s.name}: just {s.command}")
        text, _ = run_spec(root, s, cache, keep_image=False)
        (fresh_dir / f"{s.name}.txt").write_text(text, encoding="utf-8")
        found = compare(saved[s.name], text, EXACT if exact else s.tolerance)
        problems += [f"{s.name}: a fresh run differs from the page{'' if exact else ' beyond its tolerance'}:\n{p}"
                     for p in found.problems]
        numbers += found.numbers
        if found.worst > worst[0]:
            worst = (found.worst, s.name, found.worst_at, s.tolerance.widest)
    if exact:
        echo(f"{d.name}: {len(specs)} outputs re-run and compared exactly (same float arithmetic)")
        return problems
    claims = run_claims(root, numerics.phase_number(d), fresh_dir)
    echo(f"{d.name}: {len(specs)} outputs re-run, {numbers} numbers compared; largest relative difference "
         f"allowed: {worst[0]:.3f} in {worst[1] or '-'} (its widest tolerance {worst[3]:g}): {worst[2]}; "
         f"claim tests on the fresh outputs: {'pass' if not claims else f'{len(claims)} fail'}")
    return problems + claims
