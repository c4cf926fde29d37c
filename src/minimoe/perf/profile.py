"""Where the time of `just moe-train` goes (`just profile`, `python -m minimoe.perf.profile`).

Takes the same flags as `just moe-train` and measures three things:

    wall        the command itself, `python -m minimoe.train <flags>`, run --runs times as a fresh
                process: its wall time, and the training's own "time: N steps in X s" line
    phases      one more run in this process, with timers around each phase of the command: torch's
                import, the data, the training steps, the evaluation, the dense baseline (cached after
                the first run), the outputs (telemetry.json, load.png), with Python's start and the imports
                timed as a fresh process of their own; and around each part of a step:
                the batch, the forward pass (split by module: attention, router, experts, the MoE
                block's own dispatch, norms and residuals, embeddings and head), the loss, the backward
                pass, the optimizer, and the rest of the step (routing telemetry, step lines)
    ops         --op-steps more steps under torch.profiler: the torch operations that take the step's
                time, with their calls a step (the backward pass's operations included)

The timers wrap the training's own functions from outside (minimoe.train's names, the modules'
forward hooks, torch.Tensor.backward) for the in-process run only: nothing in the training code knows
about them. They cost a few microseconds a step, so the in-process steps are slightly slower than the
fresh runs' (both are printed). `--json` says where profile.json goes (runs/profile/); the site's
`record-profile` puts it on the performance page.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from unittest import mock

import torch

from .. import train as train_mod
from ..config import build_parser, config_file_in, config_from_args
from ..experts import Experts
from ..files import atomic_write
from ..model import Attention, Block, MiniLM
from ..moe_block import DenseFFN, MoEBlock
from ..router import Router
from .bench import _quiet_stderr

# a module class -> the forward part its own time (not its timed children's) is counted in
FORWARD_PARTS = {MiniLM: "embeddings, final norm, head", Block: "norms, residual adds", Attention: "attention",
                 Router: "router", MoEBlock: "MoE dispatch (sort, gather, combine)",
                 Experts: "experts (grouped matmuls)", DenseFFN: "dense FFN"}
STEP_PARTS = ("batch", "forward", "loss", "zero_grad", "backward", "optimizer", "telemetry and step lines")
PHASES = ("start Python, import torch and minimoe", "data", "model and optimizer", "training steps", "evaluation",
          "dense baseline", "outputs (telemetry.json, load.png)")


class Clock:
    """Seconds per named part, summed over the run, and the calls of each."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.muted = False  # while the dense baseline trains: its steps are not the run's

    def add(self, name: str, seconds: float) -> None:
        if self.muted:
            return
        self.seconds[name] += seconds
        self.calls[name] += 1

    def timed(self, name: str, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - t)
        return wrapper


def part_of(module: torch.nn.Module) -> str | None:
    return next((part for cls, part in FORWARD_PARTS.items() if isinstance(module, cls)), None)


def _hook_forward(model: torch.nn.Module, clock: Clock) -> None:
    """Forward hooks that charge each module's own time (its timed children's excluded) to its part."""
    stack: list[list[float]] = []  # per open module: [start, time of its timed children]
    shared = {id(m.shared) for m in model.modules() if isinstance(m, MoEBlock) and m.shared is not None}

    def pre(module, args):
        stack.append([time.perf_counter(), 0.0])

    def post(module, args, out):
        start, children = stack.pop()
        total = time.perf_counter() - start
        if stack:
            stack[-1][1] += total
        elif module.training:  # the model itself: the whole forward pass
            clock.add("forward", total)
        if module.training:
            clock.add("shared experts" if id(module) in shared else part_of(module), total - children)

    for m in model.modules():
        if part_of(m):
            m.register_forward_pre_hook(pre)
            m.register_forward_hook(post)


@contextlib.contextmanager
def timers(clock: Clock):
    """Wrap minimoe.train's phases and a training step's parts with the clock, for one run."""
    marks = {"last_batch": None}
    real_batches, real_model, real_adamw = train_mod.Batches, train_mod.MiniLM, train_mod.AdamW
    real_backward = torch.Tensor.backward

    class Batches(real_batches):
        def next(self):
            t = time.perf_counter()
            if marks["last_batch"] is None:
                clock.add("model and optimizer", t - marks["train_start"])
            else:
                clock.add("step", t - marks["last_batch"])
            marks["last_batch"] = t
            out = super().next()
            clock.add("batch", time.perf_counter() - t)
            return out

    class Model(real_model):
        def __init__(self, cfg):
            super().__init__(cfg)
            _hook_forward(self, clock)

    class AdamW(real_adamw):
        zero_grad = clock.timed("zero_grad", real_adamw.zero_grad)
        step = clock.timed("optimizer", real_adamw.step)

    def train(*args, **kwargs):
        marks["train_start"], marks["last_batch"] = time.perf_counter(), None
        out = real_train(*args, **kwargs)
        if marks["last_batch"] is not None:  # the last step ends where the evaluation starts
            clock.add("step", marks["eval_start"] - marks["last_batch"])
        return out

    def evaluate(*args, **kwargs):
        marks["eval_start"] = t = time.perf_counter()
        out = real_evaluate(*args, **kwargs)
        clock.add("evaluation", time.perf_counter() - t)
        return out

    def dense_baseline(*args, **kwargs):
        t, clock.muted = time.perf_counter(), True  # a cache miss trains the dense model: not this run's steps
        try:
            return real_baseline(*args, **kwargs)
        finally:
            clock.muted = False
            clock.add("dense baseline", time.perf_counter() - t)

    real_train, real_evaluate, real_baseline = train_mod.train, train_mod.evaluate, train_mod.dense_baseline
    with contextlib.ExitStack() as stack:
        for name, value in (("Batches", Batches), ("MiniLM", Model), ("AdamW", AdamW), ("train", train),
                            ("evaluate", evaluate),
                            ("load_dataset", clock.timed("data", train_mod.load_dataset)),
                            ("main_loss_fn", clock.timed("loss", train_mod.main_loss_fn)),
                            ("combine_losses", clock.timed("loss", train_mod.combine_losses)),
                            ("dense_baseline", dense_baseline),
                            ("write_outputs", clock.timed("outputs (telemetry.json, load.png)",
                                                          train_mod.write_outputs))):
            stack.enter_context(mock.patch.object(train_mod, name, value))
        stack.enter_context(mock.patch.object(torch.Tensor, "backward", clock.timed("backward", real_backward)))
        yield


def phases_run(argv: list[str]) -> dict:
    """One run of the command in this process, under the timers: its phases and a step's parts."""
    clock = Clock()
    with timers(clock), contextlib.redirect_stdout(io.StringIO()) as printed:
        rc = train_mod.main(argv)
    if rc not in (0, None):
        raise SystemExit(f"error: moe-train {' '.join(argv)} stopped with exit code {rc}:\n"
                         f"{printed.getvalue()[-2000:]}")
    steps = clock.calls["step"]
    if steps == 0:
        raise SystemExit("error: the run took no training step; profile a run with --steps 1 or more")
    s = clock.seconds
    per_step = {part: 1e3 * s[part] / steps for part in
                ("batch", "forward", "loss", "zero_grad", "backward", "optimizer")}
    per_step["telemetry and step lines"] = 1e3 * s["step"] / steps - sum(per_step.values())
    forward = {part: 1e3 * s[part] / steps for part in dict.fromkeys([*FORWARD_PARTS.values(), "shared experts"])
               if clock.calls[part]}
    phases = {"start Python, import torch and minimoe": import_seconds(), "data": s["data"],
              "model and optimizer": s["model and optimizer"], "training steps": s["step"],
              "evaluation": s["evaluation"], "dense baseline": s["dense baseline"],
              "outputs (telemetry.json, load.png)": s["outputs (telemetry.json, load.png)"]}
    return {"steps": steps, "phases_s": phases, "step_ms": 1e3 * s["step"] / steps, "step_parts_ms": per_step,
            "forward_parts_ms": forward}


def import_seconds() -> float:
    """Wall seconds of a fresh `python -c "import minimoe.train"`: what every run pays before its first step
    (this process imported torch long before its timers started)."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import minimoe.train"], check=True)
    return time.perf_counter() - t


def wall_runs(argv: list[str], runs: int, echo=print) -> list[dict]:
    """`python -m minimoe.train <argv>` as fresh processes: wall seconds and the training's own seconds."""
    out = []
    for i in range(runs):
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "minimoe.train", *argv], capture_output=True, text=True)
        wall = time.perf_counter() - t
        if p.returncode != 0:
            raise SystemExit(f"error: moe-train {' '.join(argv)} failed (exit {p.returncode}):\n{p.stderr[-2000:]}")
        m = re.search(r"time: (\d+) steps in ([\d.]+) s", p.stdout)
        out.append({"wall_s": round(wall, 3), "train_s": float(m.group(2)) if m else None})
        echo(f"  fresh run {i + 1}/{runs}: {wall:.2f} s wall" + (f", training {m.group(2)} s" if m else ""))
    return out


def op_table(argv: list[str], steps: int, warmup: int = 20) -> list[dict]:
    """The torch operations of `steps` training steps under torch.profiler, after `warmup` steps (the first
    steps allocate): self CPU time and calls a step, the evaluation left out."""
    cfg = config_from_args(build_parser(defaults=config_file_in(argv)).parse_args(argv))
    cfg = cfg.replace(train={"steps": warmup + steps, "out": "", "save": "", "baseline": False})
    prof = torch.profiler.profile()
    real_batches, real_evaluate, drawn = train_mod.Batches, train_mod.evaluate, [0]

    class Batches(real_batches):
        def next(self):
            drawn[0] += 1
            if drawn[0] == warmup + 1:
                prof.start()
            return super().next()

    def evaluate(*args, **kwargs):
        prof.stop()
        return real_evaluate(*args, **kwargs)

    with _quiet_stderr(), mock.patch.object(train_mod, "Batches", Batches), \
            mock.patch.object(train_mod, "evaluate", evaluate):
        train_mod.train(cfg)
    rows = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in rows) or 1.0
    rows.sort(key=lambda e: -e.self_cpu_time_total)
    return [{"op": e.key, "ms_per_step": e.self_cpu_time_total / 1e3 / steps, "share": e.self_cpu_time_total / total,
             "calls_per_step": e.count / steps} for e in rows]


TOP_OPS = 12  # the operations the printout and the page list


def report(data: dict) -> str:
    """The profile as text: the fresh runs, the phases, a step's parts, the forward's parts, the ops."""
    lines = []
    walls = [r["wall_s"] for r in data["wall"]]
    trains = [r["train_s"] for r in data["wall"] if r["train_s"] is not None]
    cmd = "just moe-train " + " ".join(data["argv"])
    if walls:
        lines.append(f"{cmd}: {statistics.median(walls):.2f} s wall, median of {len(walls)} fresh runs "
                     f"({min(walls):.2f}-{max(walls):.2f})"
                     + (f"; training {statistics.median(trains):.2f} s of it" if trains else ""))
    p = data["phases"]
    lines.append(f"\nOne more run, in this process, with timers ({p['steps']} steps):")
    for name in PHASES:
        lines.append(f"  {name:40s} {p['phases_s'][name]:7.3f} s")
    lines.append(f"\nA training step: {p['step_ms']:.2f} ms")
    for name in STEP_PARTS:
        lines.append(f"  {name:40s} {p['step_parts_ms'][name]:7.3f} ms")
        if name == "forward":
            for part, ms in p["forward_parts_ms"].items():
                lines.append(f"    {part:38s} {ms:7.3f} ms")
    if data.get("ops"):
        calls = sum(o["calls_per_step"] for o in data["ops"])
        lines.append(f"\nThe torch operations of {data['op_steps']} more steps (torch.profiler, self CPU time; "
                     f"the profiler's own cost inflates them): {calls:.0f} calls a step, the top {TOP_OPS}:")
        lines.append(f"  {'operation':52s} {'ms/step':>8s} {'share':>6s} {'calls/step':>11s}")
        for o in data["ops"][:TOP_OPS]:
            lines.append(f"  {o['op'][:52]:52s} {o['ms_per_step']:8.3f} {100 * o['share']:5.1f}% "
                         f"{o['calls_per_step']:11.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="profile", description=__doc__.split("\n\n")[0] + " Other flags go to "
                                 "moe-train, e.g. just profile --steps 500.")
    ap.add_argument("--runs", type=int, default=3, help="fresh runs of the command timed for its wall time (default 3)")
    ap.add_argument("--op-steps", type=int, default=50, help="steps under torch.profiler for the op table; 0 = none")
    ap.add_argument("--json", default="runs/profile/profile.json", help="where to write the profile ('' = nowhere)")
    args, train_argv = ap.parse_known_args(argv)
    if args.runs < 0 or args.op_steps < 0:
        ap.error("--runs and --op-steps take 0 or more")
    if not any(a == "--out" or a.startswith("--out=") for a in train_argv):  # leave the learner's runs/latest be
        train_argv += ["--out", "runs/profile/run"]
    print(f"profiling: just moe-train {' '.join(train_argv)}")
    wall = wall_runs(train_argv, args.runs)
    phases = phases_run(train_argv)
    threads = torch.get_num_threads()  # as the run set them (--threads)
    ops = op_table(train_argv, args.op_steps) if args.op_steps else []
    data = {"argv": train_argv, "wall": wall, "phases": phases, "ops": ops, "op_steps": args.op_steps,
            "meta": {"torch": torch.__version__, "threads": threads, "machine": platform.machine(),
                     "cpus": os.cpu_count(), "python": platform.python_version()}}
    print(report(data))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(data, indent=1).encode())
        print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    gc.freeze()  # as `python -m minimoe.train` does: the imports' objects are never walked by a collection
    sys.exit(main())
