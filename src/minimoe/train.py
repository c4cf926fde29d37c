"""Training: the loop, its CLI (`just moe-train`, `python -m minimoe.train`) and the run's outputs.

One step: draw a batch, run the model, combine main + aux (+ z) losses (loss.py), step AdamW,
nudge the aux-free router biases, record the routing telemetry. Every `--log-every` steps a
step line is printed (a live progress bar on a terminal, plain lines when piped). At the end:
val loss against the dense baseline of matched active width (trained once, then cached), the
routing health report on held-out tokens, the first collapse step of each layer, P_total and
P_active, and the files: telemetry.json (the whole history), load.png, and a checkpoint with
--save. Ctrl-C stops cleanly: what was measured so far is still written.

Under a capacity (--capacity-factor) every step also records each layer's dropped assignments. With
--expert-parallel N (under torchrun) each rank trains on its B/N sequences with its E/N experts
(parallel.py); the losses and the telemetry are the whole batch's, rank 0 prints and writes, and the
experts are gathered back for the evaluation, the checkpoint and the traffic report.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import parallel, report
from .checkpoint import CheckpointError, config_mismatch, load_checkpoint, save_checkpoint
from .config import Config, ConfigError, build_parser, config_file_in, config_from_args
from .data import Batches, DataError, Dataset, load_dataset
from .evaluate import EvalResult, dense_baseline_config, evaluate
from .files import atomic_write, cache_dir, source_fingerprint
from .loss import combine_losses, main_loss_fn
from .model import MiniLM
from .params import count_params
from .perf.adamw import AdamW
from .telemetry import CollapseTracker, cv_random_pct, dropped_count, health_dict, summarize


@dataclass
class RunResult:
    cfg: Config
    model: MiniLM
    history: list[dict]  # one entry per step: losses, per-layer max_load and CV
    log: list[dict]  # one entry per logged step: also per-layer expert counts
    final: EvalResult
    first_collapse: list[int | None]  # per MoE layer, in the order of `layers`
    seconds: float
    layers: list[int] = field(default_factory=list)  # the MoE layers' block indices (MiniLM.moe_layers)
    baseline_val_loss: float | None = None
    interrupted: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def summary(self):
        return summarize(self.final.health)


def _progress_bar(step: int, steps: int, main: float, t0: float) -> str:
    done = int(30 * step / max(steps, 1))
    rate = step / max(time.perf_counter() - t0, 1e-9)
    eta = (steps - step) / max(rate, 1e-9)
    return f"\r[{'#' * done}{'.' * (30 - done)}] {step}/{steps}  main={main:.3f}  {rate:5.1f} it/s  eta {eta:4.0f}s"


def train(cfg: Config, data: Dataset | None = None, echo=None, live: bool = False,
          par: parallel.ExpertParallel | None = None) -> RunResult:
    """Train one model. echo(line) receives the step lines (None: silent); live draws a progress bar.
    par: this rank's part of an expert-parallel job (default: joined when --expert-parallel > 1)."""
    t = cfg.train
    par = par or (parallel.start(cfg) if t.expert_parallel > 1 else None)
    if par and par.rank != 0:
        echo, live = None, False  # rank 0 speaks for the job
    torch.set_num_threads(t.threads)
    torch.manual_seed(t.seed)
    data = data or load_dataset(t.data, cfg.model.context)
    cfg = cfg.replace(model={"vocab_size": data.vocab_size})
    model = MiniLM(cfg)  # every rank builds the same model from the seed...
    if t.load:
        _load_into(model, cfg, data, t.load)
    if par:
        experts_forward = model.moe_blocks[0].experts_forward
        par.shard(model)  # ...and keeps its own experts
    opt = AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)  # torch.optim.AdamW, bit for bit, faster
    batches = Batches(data.train_ids, cfg.model.context, t.batch, t.seed)
    moe_blocks = model.moe_blocks
    tracker = CollapseTracker(len(moe_blocks), cfg.moe.top_k, cfg.moe.collapse_threshold)
    cv_rand = cv_random_pct(cfg.moe.experts, t.batch * cfg.model.context * cfg.moe.top_k)
    history, log, width = [], [], len(str(t.steps))
    snap_every = max(1, t.steps // 100)  # expert counts are kept ~100 times per run, for the load plot
    t0, interrupted = time.perf_counter(), False
    try:
        for step in range(1, t.steps + 1):
            x_BS, y_BS = batches.next()
            if par:
                x_BS, y_BS = par.rows(x_BS), par.rows(y_BS)
            logits, routings = model(x_BS)
            losses = par.combine_losses if par else combine_losses
            parts = losses(main_loss_fn(logits, y_BS), routings, cfg.moe.aux_alpha, cfg.moe.z_alpha)
            opt.zero_grad()
            parts.total.backward()
            if par:
                par.all_reduce_grads(model)
            opt.step()
            loads = par.global_loads(routings) if par else [r.load_E for r in routings]
            for block, load_E in zip(moe_blocks, loads):
                block.router.update_bias(load_E)
            drops = [dropped_count(r) for r in routings]
            max_loads = [float(lo.max() / lo.sum()) for lo in loads]
            cvs = [float(100 * lo.std(unbiased=False) / lo.mean()) for lo in loads]
            tracker.update(step, max_loads)
            main, aux = parts.main.item(), parts.aux.item()
            history.append({"step": step, "main": main, "aux": aux, "z": parts.z.item(),
                            "max_load": max_loads, "cv": cvs, "cv_random": cv_rand, "dropped": drops,
                            "drop_pct": [100.0 * d / r.ids_TK.numel() for d, r in zip(drops, routings)]})
            printed = step % t.log_every == 0 or step == t.steps
            if printed or step % snap_every == 0:
                counts = [lo.tolist() for lo in loads]
                log.append({"step": step, "counts": counts})
                if echo and printed:
                    worst = max(range(len(cvs)), key=cvs.__getitem__) if cvs else None
                    line = report.step_line(step, main, aux,
                                            counts[worst] if cvs else None, cvs[worst] if cvs else None,
                                            model.moe_layers[worst] if len(cvs) > 1 else None, width,
                                            history[-1]["drop_pct"] if cfg.moe.capacity_factor > 0 else None)
                    echo(("\r\033[K" if live else "") + line)
            if live:
                print(_progress_bar(step, t.steps, main, t0), end="", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
    if live:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    seconds, extra = time.perf_counter() - t0, {"vocab": data.vocab}
    if par:
        extra["parallel"] = par.gather_traffic(seconds)
        par.unshard(model, experts_forward)  # every rank holds every expert again
    final = evaluate(model, data, t.eval_tokens)
    return RunResult(cfg, model, history, log, final, tracker.first_step, seconds,
                     model.moe_layers, interrupted=interrupted, extra=extra)


def _load_into(model: MiniLM, cfg: Config, data: Dataset, path: str) -> None:
    blob = load_checkpoint(path)
    diffs = config_mismatch(blob["cfg"], cfg)
    if diffs:
        raise CheckpointError(f"--load {path}: the checkpoint is from another model config; "
                              f"use the same flags as when it was saved: {'; '.join(diffs)}")
    if blob["vocab"] != data.vocab:
        raise CheckpointError(f"--load {path}: the checkpoint was trained on another text (vocabulary differs); "
                              "use the same --data")
    try:
        model.load_state_dict(blob["state"])
    except RuntimeError as e:
        raise CheckpointError(f"--load {path}: weights do not fit this model: {str(e)[:200]}") from None


def dense_baseline(cfg: Config, data: Dataset) -> float:
    """Val loss of the dense model of matched active width on the same tokens; cached on disk."""
    one = cfg.replace(train={"save": "", "load": "", "out": "", "baseline": False, "expert_parallel": 1})
    dcfg = dense_baseline_config(one)  # one process, on every rank of an expert-parallel run
    key_src = json.dumps([dcfg.to_dict(), data.vocab, len(data.train_ids), source_fingerprint()], sort_keys=True)
    path = cache_dir() / f"dense-{hashlib.sha256(key_src.encode()).hexdigest()[:20]}.json"
    if path.is_file():
        try:
            return float(json.loads(path.read_text())["val_loss"])
        except (ValueError, KeyError):
            pass  # a damaged cache entry is recomputed
    result = train(dcfg, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({"val_loss": result.final.val_loss, "config": dcfg.to_dict()}).encode())
    return result.final.val_loss


def write_outputs(res: RunResult, out_dir: str) -> list[str]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    s = res.summary
    blob = {"config": res.cfg.to_dict(), "interrupted": res.interrupted, "seconds": round(res.seconds, 3),
            "val_loss": res.final.val_loss, "perplexity": res.final.perplexity,
            "dense_baseline_val_loss": res.baseline_val_loss,
            "params": count_params(res.cfg).as_dict(), "moe_layers": res.layers,
            "first_collapse_step": res.first_collapse,
            "final_health": health_dict(res.final.health), "summary": dataclasses.asdict(s) if s else None,
            "history": res.history, "log": res.log}
    if "parallel" in res.extra:
        blob["parallel"] = res.extra["parallel"]
    atomic_write(out / "telemetry.json", json.dumps(blob).encode())
    written = [str(out / "telemetry.json")]
    if res.history:
        m, e = res.cfg.model, res.cfg.moe
        title = (f"E={e.experts} K={e.top_k} S={e.shared} gating={e.gating} aux_alpha={e.aux_alpha} "
                 f"layers={m.layers} D={m.width} seed={res.cfg.train.seed}")
        capped = e.capacity_factor > 0
        title += f" C={e.capacity_factor:g} ({e.drop_policy})" if capped else ""
        report.plot_run(str(out / "load.png"), res.history, res.log, title, res.layers, capped)
        written.append(str(out / "load.png"))
    return written


# ---------------------------------------------------------------- command line

def check_output_paths(cfg: Config) -> None:
    """Refuse, before any training, an --out or --save that could not be written at the end."""
    for name, path, want in (("out", cfg.train.out, "folder"), ("save", cfg.train.save, "file")):
        if not path:
            continue
        p = Path(path)
        if want == "folder" and p.exists() and not p.is_dir():
            raise ConfigError(f"--out {path}: is a file; --out names a folder for telemetry.json and the plots")
        if want == "file" and p.is_dir():
            raise ConfigError(f"--save {path}: is a folder; --save names the checkpoint file, e.g. {p / 'model.pt'}")
        above = next((q for q in (p.parent, *p.parent.parents) if q.exists()), None)
        if above is not None and not above.is_dir():
            raise ConfigError(f"--{name} {path}: {above} is a file, so no {want} can be made under it")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        cfg = config_from_args(build_parser(defaults=config_file_in(argv)).parse_args(argv))
        check_output_paths(cfg)
        data = load_dataset(cfg.train.data, cfg.model.context)
        live = sys.stderr.isatty()
        res = train(cfg, data, echo=print, live=live)
    except (ConfigError, DataError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as e:  # torch says "can't allocate memory" with a RuntimeError
        if isinstance(e, RuntimeError) and "allocate" not in str(e):
            raise
        print("error: not enough memory for this model and batch; lower --batch, --experts, --expert-hidden "
              "or --width", file=sys.stderr)
        return 2
    if cfg.train.expert_parallel > 1 and parallel.finish() != 0:
        return 130 if res.interrupted else 0  # rank 0 reports for the job
    if res.interrupted:
        print(f"interrupted at step {len(res.history)}: writing what was measured so far", file=sys.stderr)
    cfg = res.cfg
    if cfg.train.baseline and cfg.model.moe_start_layer < cfg.model.layers and not res.interrupted:
        res.baseline_val_loss = dense_baseline(cfg, data)
    base = f"  (dense_baseline={res.baseline_val_loss:.3f})" if res.baseline_val_loss is not None else ""
    print(f"val_loss={res.final.val_loss:.3f}{base}")
    if res.final.health:
        print(f"\nrouting health on {cfg.train.eval_tokens} held-out tokens:")
        print(report.health_table(res.final.health, cfg.moe.top_k))
        print(report.summary_line(res.summary, cfg.moe.capacity_factor > 0))
        firsts = ", ".join(f"L{i}: {'never' if s is None else s}" for i, s in zip(res.layers, res.first_collapse))
        print(f"first step with max_load >= {cfg.moe.collapse_threshold:g}/K: {firsts}")
    pc = count_params(cfg)
    print(f"P_total={pc.total:,}  P_active={pc.active:,}")
    if "parallel" in res.extra:
        print(f"\nexpert parallel: {cfg.train.expert_parallel} ranks, {cfg.moe.experts // cfg.train.expert_parallel} "
              f"experts and {cfg.train.batch // cfg.train.expert_parallel} sequences each; all-to-all traffic:")
        print(report.traffic_table(res.extra["parallel"]))
    print(f"time: {len(res.history)} steps in {res.seconds:.1f} s")
    written = write_outputs(res, cfg.train.out) if cfg.train.out else []
    if cfg.train.save and not res.interrupted:
        save_checkpoint(cfg.train.save, res.model, cfg, res.extra["vocab"], len(res.history))
        written.append(cfg.train.save)
    if written:
        print("wrote " + ", ".join(written))
    return 130 if res.interrupted else 0


if __name__ == "__main__":
    gc.freeze()  # the imports' 170,000 objects (torch) live to the end: no collection, nor the exit, walks them
    sys.exit(main())
