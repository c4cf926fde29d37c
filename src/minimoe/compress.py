"""Expert compression: averaging, per-expert ternary quantisation, per-expert magnitude pruning,
and a short recovery fine-tune. The CLI is `just compress` (`python -m minimoe.compress`).

Source note 004 asks two questions (its Bets 38 and 39): can the E experts of a layer be replaced by
their average, one expert's worth of storage, and does a short fine-tune (200 steps, lr 5e-5, AdamW)
bring the averaged model back? Its answer was no and no (520x perplexity, 2 distinct tokens in a
100-token sample, still > 3x after recovery), while compressing each expert on its own worked
(its Bet 13, 1.58-bit ternary; its Bet 48, 50% magnitude pruning). The methods here:

  average  every routed expert of a layer replaced by the mean of the layer's E experts
  ternary  each expert matrix W -> s * clamp(round(W / s), -1, 1) with s = mean |W| of that matrix:
           three values per matrix, 1.58 bits per weight (absmean, BitNet b1.58: Ma et al., 2024)
  prune    in each expert matrix, the `sparsity` fraction of weights with the smallest |w| set to 0
           (magnitude pruning, Han et al., 2015)

Only the MoE layers' experts (routed and shared) are compressed. The router is not: it is D*E
numbers that decide where every token goes, and a small error in it sends tokens to the wrong
expert, which no expert can make up for (source note 001 learnt this twice: it had to keep the router
out of its int5 quantisation and out of its magnitude pruning).

Source note 004's pre-registered criteria, on held-out perplexity relative to the uncompressed model:
STRICT <= 1.5x, LENIENT <= 3x, CATASTROPHIC > 10x or < 5 distinct tokens in a 100-token greedy
sample (perplexity alone can understate a model that has collapsed into repeating itself).

Averaging experts that were initialised independently also shrinks their weights by about
1/sqrt(E), which is damage from the init and not from what the experts learnt: train with
`--expert-init same` for the fair test (`expert_diversity` shows the shrink).

`just compress` starts from phase 39's lab settings (labs/phase-39-expert-compression/lab.yaml);
any moe-train flag changes them.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from .checkpoint import CheckpointError, load_checkpoint
from .config import Config, ConfigError, config_file_in, config_from_args
from .config import build_parser as config_parser
from .data import Batches, DataError, Dataset, eval_windows, load_dataset
from .evaluate import evaluate, greedy_sample, unique_tokens
from .loss import combine_losses, main_loss_fn
from .model import MiniLM
from .train import train

STRICT, LENIENT, CATASTROPHIC = 1.5, 3.0, 10.0  # perplexity ratios compressed / original (source note 004)
MIN_UNIQUE_TOKENS = 5  # fewer distinct tokens than this in the sample is mode collapse
SAMPLE_TOKENS = 100
RECOVERY_STEPS, RECOVERY_LR = 200, 5e-5  # source note 004's Bet 39
METHODS = ("average", "ternary", "prune")

# Parameter-name patterns that quantisation leaves in full precision. The router is D*E numbers per
# layer: quantising it saves almost nothing and changes where tokens go (source note 001's fp16 keep list).
KEEP_FULL_PRECISION = ("router",)


@dataclass
class Compression:
    """What one method changed, and how recovery must treat each changed weight's gradient."""

    method: str
    changed: list[str] = field(default_factory=list)  # parameter names the method rewrote
    kept: list[str] = field(default_factory=list)  # MoE-layer parameters it left alone
    grad_rules: list[tuple[nn.Parameter, Callable]] = field(default_factory=list)


def moe_weights(model: MiniLM) -> Iterator[tuple[str, nn.Parameter]]:
    """(name, parameter) of every MoE layer's router, routed experts and shared experts."""
    for i, block in enumerate(model.blocks):
        if block.is_moe:
            yield from block.ffn.named_parameters(prefix=f"blocks.{i}.ffn")


def _each_expert(w: torch.Tensor, fn: Callable) -> torch.Tensor:
    """fn applied to every expert's matrix on its own; w is a stack (E, X, Y) or one matrix (X, Y)."""
    w_EXY = w if w.dim() == 3 else w.unsqueeze(0)
    return torch.stack([fn(w_XY) for w_XY in w_EXY]).view_as(w)


def ternary(w_XY: torch.Tensor) -> torch.Tensor:
    """BitNet b1.58's absmean quantiser on one matrix: s = mean|w|, w -> s * clamp(round(w / s), -1, 1)."""
    s = w_XY.abs().mean().clamp_min(1e-8)
    return (w_XY / s).round().clamp(-1, 1) * s


def magnitude_prune(w_XY: torch.Tensor, sparsity: float) -> torch.Tensor:
    """One matrix with its `sparsity` fraction of smallest-|w| entries set to zero."""
    k = int(sparsity * w_XY.numel())
    if k == 0:
        return w_XY.clone()
    score_XY = w_XY.abs()  # magnitude: a large negative weight matters as much as a large positive one
    threshold = score_XY.flatten().kthvalue(k).values
    return torch.where(score_XY > threshold, w_XY, torch.zeros_like(w_XY))


@torch.no_grad()
def average_experts(model: MiniLM) -> Compression:
    """Every routed expert of a layer becomes the layer's mean expert (source note 004, Bet 38)."""
    c = Compression("average")
    for name, w in moe_weights(model):
        if ".experts." not in name:
            c.kept.append(name)
            continue
        w.copy_(w.mean(dim=0, keepdim=True).expand_as(w))
        c.changed.append(name)
        # recovery trains the one averaged expert: every copy gets the mean gradient, so they stay equal
        c.grad_rules.append((w, lambda g: g.mean(dim=0, keepdim=True).expand_as(g)))
    return c


@torch.no_grad()
def quantize_ternary(model: MiniLM) -> Compression:
    """Each expert matrix ternary with its own absmean scale; the router stays full precision."""
    c = Compression("ternary")
    for name, w in moe_weights(model):
        if any(pattern in name for pattern in KEEP_FULL_PRECISION):
            c.kept.append(name)
            continue
        w.copy_(_each_expert(w, ternary))
        c.changed.append(name)
        c.grad_rules.append((w, torch.zeros_like))  # a ternary weight stays ternary: frozen in recovery
    return c


@torch.no_grad()
def prune_magnitude(model: MiniLM, sparsity: float = 0.5) -> Compression:
    """Within each expert matrix, the smallest-|w| `sparsity` fraction set to zero; the router is kept."""
    c = Compression("prune")
    for name, w in moe_weights(model):
        # the router's few weights decide where every token goes: pruning them scrambles the routing
        if "router" in name:
            c.kept.append(name)
            continue
        w.copy_(_each_expert(w, lambda w_XY: magnitude_prune(w_XY, sparsity)))
        c.changed.append(name)
        c.grad_rules.append((w, lambda g, mask=(w != 0): g * mask))  # pruned weights stay zero in recovery
    return c


def compress(model: MiniLM, method: str, sparsity: float = 0.5) -> Compression:
    """Compress `model` in place with one of METHODS."""
    if method == "average":
        return average_experts(model)
    if method == "ternary":
        return quantize_ternary(model)
    if method == "prune":
        return prune_magnitude(model, sparsity)
    raise ValueError(f"unknown compression method {method!r}; choose one of {', '.join(METHODS)}")


@torch.no_grad()
def expert_diversity(model: MiniLM) -> list[dict]:
    """Per MoE layer, how different the experts are before averaging.

    spread      mean distance between two experts' weights / mean norm of one expert (0 = all equal)
    avg_norm    norm of the averaged expert / mean norm of one expert: ~1 for experts that stayed
                close, ~1/sqrt(E) for independent random experts (what averaging shrinks them to)
    """
    out = []
    for block in model.moe_blocks:
        ex = block.experts
        w_EP = torch.cat([w.reshape(ex.n, -1) for w in (ex.w_gate_EDF, ex.w_up_EDF, ex.w_down_EFD)], dim=1)
        norm = w_EP.norm(dim=1).mean()
        spread = torch.pdist(w_EP).mean() / norm if ex.n > 1 else torch.tensor(0.0)
        out.append({"spread": float(spread), "avg_norm": float(w_EP.mean(0).norm() / norm)})
    return out


@torch.no_grad()
def routing_changes(before: MiniLM, after: MiniLM, x_BS: torch.Tensor) -> list[float]:
    """Per MoE layer, the fraction of tokens whose first-choice expert differs between two models."""
    _, r0 = before(x_BS)
    _, r1 = after(x_BS)
    return [float((a.ids_TK[:, 0] != b.ids_TK[:, 0]).float().mean()) for a, b in zip(r0, r1)]


def recover(model: MiniLM, data: Dataset, c: Compression, steps: int = RECOVERY_STEPS,
            lr: float = RECOVERY_LR, seed: int = 0) -> None:
    """Source note 004's recovery fine-tune: AdamW on the training loss; the compression's grad rules keep
    averaged experts equal, pruned weights zero and ternary weights ternary."""
    cfg = model.cfg
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    batches = Batches(data.train_ids, cfg.model.context, cfg.train.batch, seed + 1)  # not the training batches
    model.train()
    for _ in range(steps):
        x_BS, y_BS = batches.next()
        logits, routings = model(x_BS)
        loss = combine_losses(main_loss_fn(logits, y_BS), routings, cfg.moe.aux_alpha, cfg.moe.z_alpha).total
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for w, rule in c.grad_rules:
            if w.grad is not None:
                w.grad = rule(w.grad)
        opt.step()


def verdict(ratio: float, unique: int) -> str:
    """Source note 004's pre-registered verdict for a perplexity ratio and a sample's distinct-token count."""
    if ratio > CATASTROPHIC or unique < MIN_UNIQUE_TOKENS:
        return "CATASTROPHIC"
    if ratio <= STRICT:
        return "STRICT"
    if ratio <= LENIENT:
        return "LENIENT"
    return "FAILS LENIENT"


@dataclass
class Scored:
    perplexity: float
    ratio: float
    unique: int
    sample: str
    verdict: str


def score(model: MiniLM, data: Dataset, base_ppl: float) -> Scored:
    ppl = evaluate(model, data, model.cfg.train.eval_tokens).perplexity
    prompt = data.val_ids[: model.cfg.model.context // 2]
    ids = greedy_sample(model, prompt, SAMPLE_TOKENS)
    n = unique_tokens(ids)
    return Scored(ppl, ppl / base_ppl, n, data.decode(ids), verdict(ppl / base_ppl, n))


# ---------------------------------------------------------------- command line

def build_parser(defaults: Config | None = None) -> argparse.ArgumentParser:
    p = config_parser("compress", "Train (or --load) a toy MoE, compress its experts, and judge the result against "
                      "the pre-registered criteria of source note 004 (Bet 38/39). `just compress` starts from "
                      "phase 39's lab settings (--config labs/phase-39-expert-compression/lab.yaml).", defaults)
    for action in p._actions:  # --load means something slightly different here
        if action.dest == "train.load":
            action.help = "compress this checkpoint instead of training one (its model flags are used)"
    g = p.add_argument_group("compress")
    g.add_argument("--method", default="all", choices=(*METHODS, "all"), dest="compress.method",
                   help="how to compress the experts; all = each method on its own copy of the model")
    g.add_argument("--sparsity", type=float, default=0.5, dest="compress.sparsity",
                   help="prune: fraction of each expert matrix's weights set to zero")
    g.add_argument("--recover-steps", type=int, default=0, dest="compress.recover_steps",
                   help=f"recovery fine-tune steps after compressing (source note 004 used {RECOVERY_STEPS}); 0 = none")
    g.add_argument("--recover-lr", type=float, default=RECOVERY_LR, dest="compress.recover_lr",
                   help="AdamW learning rate of the recovery fine-tune")
    return p


def _short(name: str) -> str:
    """blocks.1.ffn.experts.w_up_EDF -> L1 w_up"""
    parts = name.split(".")
    return f"L{parts[1]} {parts[-2] if parts[-1] == 'weight' else parts[-1].rsplit('_', 1)[0]}"


def _row(label: str, s: Scored) -> str:
    return f"{label:<22} {s.perplexity:9.2f}  {s.ratio:6.2f}x  {s.unique:6d}  {s.verdict}"


def _config(args: argparse.Namespace) -> tuple[Config, dict, str | None]:
    """The model config (from the flags, or from the --load checkpoint), the compress options, the vocabulary."""
    opts = {k.split(".", 1)[1]: v for k, v in vars(args).items() if k.startswith("compress.")}
    if not 0 <= opts["sparsity"] < 1:
        raise ConfigError(f"--sparsity {opts['sparsity']}: must be in [0, 1)")
    if opts["recover_steps"] < 0 or opts["recover_lr"] <= 0:
        raise ConfigError("--recover-steps must be >= 0 and --recover-lr > 0")
    cfg = config_from_args(args)
    if not cfg.train.load:
        return cfg, opts, None
    saved = load_checkpoint(cfg.train.load)  # the model's shape comes from the checkpoint
    return Config.from_dict({**saved["cfg"].to_dict(), "train": {**cfg.to_dict()["train"], "steps": 0}}), opts, \
        saved["vocab"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    t0 = time.perf_counter()
    try:
        args = build_parser(config_file_in(argv)).parse_args(argv)
        cfg, opts, vocab = _config(args)
        data = load_dataset(cfg.train.data, cfg.model.context, vocab)
        res = train(cfg, data)
    except (ConfigError, DataError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    model, cfg, steps = res.model, res.cfg, opts["recover_steps"]
    if res.interrupted or not model.moe_blocks:
        print("interrupted during training: nothing compressed" if res.interrupted else
              "error: this model has no MoE layer (--moe-start-layer = --layers): nothing to compress", file=sys.stderr)
        return 130 if res.interrupted else 2
    m, e = cfg.model, cfg.moe
    base = score(model, data, res.final.perplexity)
    print(f"model: E={e.experts} K={e.top_k} F={e.expert_hidden} S={e.shared} layers={m.layers} "
          f"moe_start_layer={m.moe_start_layer} expert_init={e.expert_init} aux_alpha={e.aux_alpha} "
          f"seed={cfg.train.seed}  ({'loaded ' + cfg.train.load if cfg.train.load else f'{len(res.history)} steps'})")
    print(f"original: perplexity={base.perplexity:.2f}  distinct tokens in a {SAMPLE_TOKENS}-token sample="
          f"{base.unique}")
    print("expert diversity before compressing (spread: mean distance between two experts / one expert's norm;"
          " avg_norm: norm of their average / one expert's norm):")
    for i, dv in zip(model.moe_layers, expert_diversity(model)):
        print(f"  MoE layer {i}: spread={dv['spread']:.3f}  avg_norm={dv['avg_norm']:.3f}  "
              f"(1/sqrt(E)={1 / math.sqrt(e.experts):.3f})")
    x_BS, _ = eval_windows(data.val_ids, m.context, cfg.train.eval_tokens)
    rows = [("original", base)]
    if steps:  # the control: recovery is more training, so the uncompressed model gets the same steps
        control = copy.deepcopy(model)
        recover(control, data, Compression("none"), steps, opts["recover_lr"], cfg.train.seed)
        rows.append((f"original +{steps} steps", score(control, data, base.perplexity)))
    for method in METHODS if opts["method"] == "all" else (opts["method"],):
        cmodel = copy.deepcopy(model)
        c = compress(cmodel, method, opts["sparsity"])
        label = f"prune {opts['sparsity']:.0%}" if method == "prune" else method
        changes = routing_changes(model, cmodel, x_BS)
        spread = expert_diversity(cmodel)
        print(f"{label}: changed {', '.join(map(_short, c.changed)) or 'nothing'}; "
              f"kept {', '.join(map(_short, c.kept)) or 'nothing'}")
        print(f"{label}: tokens whose first-choice expert changed: "
              + "  ".join(f"L{i} {ch:.1%}" for i, ch in zip(model.moe_layers, changes))
              + "; expert spread after: "
              + "  ".join(f"L{i} {d['spread']:.3f}" for i, d in zip(model.moe_layers, spread)))
        rows.append((label, score(cmodel, data, base.perplexity)))
        if steps:
            recover(cmodel, data, c, steps, opts["recover_lr"], cfg.train.seed)
            rows.append((f"{label} +{steps} steps", score(cmodel, data, base.perplexity)))
    print(f"\n{'model':<22} {'perplexity':>9}  {'ratio':>7}  {'unique':>6}  verdict (STRICT <= {STRICT}x, "
          f"LENIENT <= {LENIENT}x, CATASTROPHIC > {CATASTROPHIC:g}x or < {MIN_UNIQUE_TOKENS} unique)")
    print("\n".join(_row(label, s) for label, s in rows))
    print(f"\ngreedy samples ({SAMPLE_TOKENS} tokens, first 60 shown):")
    print("\n".join(f"{label:<22} {s.sample[:60]!r}" for label, s in rows))
    print(f"time: {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
