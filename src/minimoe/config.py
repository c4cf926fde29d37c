"""Configuration: three flat dataclasses (model, MoE, training), their validation, config files and
the command-line flags built from them.

Every field carries a one-line help text (its meaning and unit); the same text becomes the
`--flag` help of `python -m minimoe.train`. Flags are the field names in kebab-case
(`top_k` -> `--top-k`), so code, CLI and labs use one vocabulary. A config file (YAML, e.g. a lab's
settings in labs/phase-NN-*/) holds the same names in the same three sections; `--config FILE`
starts from it, and the flags given beside it win.

A bad value raises `ConfigError` naming the flag, the value and the fix; the CLI turns it into a
one-line message instead of a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

GATINGS = ("sparse", "soft", "ste")
EXPERT_INITS = ("independent", "same")
EXPERTS_IMPLS = ("grouped", "loop", "auto", "padded", "tiered", "triton")  # the same computation (minimoe/perf/)
DROP_POLICIES = ("position", "probability")
MAX_SEED = 2**63 - 1  # torch's generators take a signed 64-bit seed
MAX_TOKENS_PER_STEP = 2**20  # batch * context; more does not fit this toy's CPU memory budget
MAX_CONFIG_FILE_BYTES = 64 * 1024


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the flag and the fix."""


def _f(default, help: str, **kw):
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class ModelConfig:
    """The decoder-only language model around the FFN layers."""

    width: int = _f(48, "D: width of the residual stream (channels per token)")
    layers: int = _f(2, "number of transformer blocks")
    heads: int = _f(3, "attention heads per block; must divide --width")
    context: int = _f(64, "tokens (characters) per training window")
    dense_hidden: int = _f(
        0, "hidden width of a dense FFN layer; 0 = match the MoE's active width (K + S) * F"
    )
    moe_start_layer: int = _f(
        0, "blocks with index >= this use an MoE FFN, the others a dense FFN; = --layers gives a dense model"
    )
    vocab_size: int = _f(0, "V: vocabulary size; 0 = set from the training text", cli=False)


@dataclass
class MoEConfig:
    """The mixture-of-experts FFN: router, routed experts, shared experts."""

    experts: int = _f(4, "E: routed experts per MoE layer")
    top_k: int = _f(1, "K: experts each token is sent to (sparse gating)")
    shared: int = _f(0, "S: shared experts that every token passes through")
    expert_hidden: int = _f(16, "F: hidden width of one expert (SwiGLU)")
    gating: str = _f(
        "sparse",
        "sparse = top-k; soft = every expert, softmax-blended; ste = hard top-1 with a straight-through gradient",
        choices=GATINGS,
    )
    router_init_std: float = _f(
        0.01, "std of the router's initial weights (small: routing starts near-uniform); 0 = 1/sqrt(D)"
    )
    aux_alpha: float = _f(0.01, "weight of the Switch load-balancing aux loss in the total loss")
    z_alpha: float = _f(0.0, "weight of the router z-loss (ST-MoE); 0 = off")
    bias_update_rate: float = _f(
        0.0, "aux-loss-free balancing: per-step nudge of each expert's selection bias (logit units); 0 = off"
    )
    expert_init: str = _f(
        "independent", "independent = each expert its own random init; same = all experts start equal",
        choices=EXPERT_INITS,
    )
    collapse_threshold: float = _f(
        0.9, "a layer counts as collapsed once max_load >= this * (1/K) (source note 000's 0.9 * (1/K))"
    )
    experts_impl: str = _f(
        "grouped", "how the routed experts run; all compute the same: grouped = tokens sorted by expert, one "
        "grouped matmul per weight (moe_block.py); loop = one expert at a time; auto, padded, tiered, triton = "
        "faster layouts and kernels (minimoe/perf/)",
        choices=EXPERTS_IMPLS,
    )
    capacity_factor: float = _f(
        0.0, "C: each expert takes at most ceil(C * T*K / E) of a batch's T*K (token, expert) assignments; one "
        "past that is dropped and its token passes through the residual unchanged (GShard, Switch); 0 = dropless"
    )
    drop_policy: str = _f(
        "position", "which assignments a full expert drops: position = the latest in the batch, every first "
        "choice before any second (GShard); probability = the least confident tokens' (batch-prioritised routing)",
        choices=DROP_POLICIES,
    )


@dataclass
class TrainConfig:
    """The training run: budget, optimiser, data, outputs."""

    steps: int = _f(500, "optimiser steps; 0 = only evaluate (with --load)")
    batch: int = _f(16, "sequences per step; tokens per step = batch * context")
    lr: float = _f(3e-3, "AdamW learning rate (constant)")
    weight_decay: float = _f(0.0, "AdamW decoupled weight decay")
    seed: int = _f(0, "seed for init, batches and sampling; same seed -> bit-identical losses")
    log_every: int = _f(50, "print a step line every this many steps")
    eval_tokens: int = _f(4096, "held-out tokens used for val loss and the routing health report")
    data: str = _f("", "path to a UTF-8 text file to train on; empty = the built-in grammar-tutor corpus")
    threads: int = _f(2, "CPU threads for torch (pinned so runs are reproducible)")
    out: str = _f("runs/latest", "folder for telemetry.json, plots and the checkpoint")
    baseline: bool = _f(True, "also train (or read from cache) the dense baseline of matched active width")
    save: str = _f("", "write a checkpoint here at the end of training")
    load: str = _f("", "start from this checkpoint (its config must match)")
    expert_parallel: int = _f(
        1, "N: shard the experts over N ranks started by torchrun (E/N experts each, the rest data-parallel, "
        "B/N sequences each); 1 = one process"
    )


@dataclass
class Config:
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    moe: MoEConfig = dataclasses.field(default_factory=MoEConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def __post_init__(self):
        validate(self)

    @property
    def matched_dense_hidden(self) -> int:
        """Hidden width of a dense FFN that does the same work per token as the MoE: (K + S) * F."""
        return (self.moe.top_k + self.moe.shared) * self.moe.expert_hidden

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Config:
        if not isinstance(d, dict) or not all(isinstance(d.get(s, {}), dict) for s, _ in SECTIONS):
            raise ConfigError("a config is a mapping of the sections model, moe and train, each a mapping "
                              f"of field names to values; got {type(d).__name__}")
        try:
            return cls(**{section: klass(**d.get(section, {})) for section, klass in SECTIONS})
        except TypeError as e:  # an unknown or missing field
            raise ConfigError(f"config does not match this version of minimoe: {e}") from None

    @classmethod
    def from_file(cls, path: str | Path, base: Config | None = None) -> Config:
        """`base` (the defaults if None), changed by the values a YAML config file sets: any field it does
        not name keeps its value, e.g. labs/phase-36-routing-and-balance/lab.yaml."""
        d = read_config_file(path)
        try:
            return (base or Config()).replace(**d)
        except ConfigError as e:
            raise ConfigError(f"--config {path}: {e}") from None

    def replace(self, **sections) -> Config:
        """Copy with some fields changed: cfg.replace(moe={'experts': 4}, train={'steps': 10})."""
        d = self.to_dict()
        for section, changes in sections.items():
            if section not in d or not isinstance(changes, dict):
                raise ConfigError(f"section {section!r}: the sections are model, moe and train, each a mapping")
            unknown = set(changes) - set(d[section])
            if unknown:
                raise ConfigError(f"unknown {section} field(s): {', '.join(sorted(unknown))}")
            d[section].update(changes)
        return Config.from_dict(d)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _need(ok: bool, name: str, value, why: str):
    if not ok:
        raise ConfigError(f"{flag(name)} {value!r}: {why}")


def read_config_file(path: str | Path) -> dict:
    """The sections and values a config file sets, checked to be a mapping of known sections."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config {path}: no such file")
    if p.stat().st_size > MAX_CONFIG_FILE_BYTES:
        raise ConfigError(f"--config {path}: larger than a config file can be ({MAX_CONFIG_FILE_BYTES} bytes)")
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"--config {path}: not a readable YAML file ({type(e).__name__}); "
                          "write sections model:, moe:, train: of field: value lines") from None
    if not isinstance(d, dict) or set(d) - {s for s, _ in SECTIONS}:
        raise ConfigError(f"--config {path}: a config file holds the sections model, moe and train only")
    return d


def _check_types(cfg: Config) -> None:
    """Every value has its field's type (a config file or a checkpoint can hold anything); floats are finite."""
    for section, _ in SECTIONS:
        for f in dataclasses.fields(getattr(cfg, section)):
            v, want = getattr(getattr(cfg, section), f.name), type(f.default)
            if want is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)  # 1 in a YAML or JSON file means 1.0
                setattr(getattr(cfg, section), f.name, v)
            if type(v) is not want:
                what = {int: "a whole number", float: "a number", str: "a string", bool: "true or false"}[want]
                raise ConfigError(f"{flag(f.name)} {v!r}: must be {what}")
            if want is float and not math.isfinite(v):
                raise ConfigError(f"{flag(f.name)} {v!r}: must be a finite number")


def validate(cfg: Config) -> None:
    _check_types(cfg)
    m, e, t = cfg.model, cfg.moe, cfg.train
    for name in ("width", "layers", "heads", "context"):
        _need(getattr(m, name) >= 1, name, getattr(m, name), "must be a positive whole number")
    _need(m.width % m.heads == 0, "heads", m.heads,
          f"must divide --width {m.width} (each head gets width/heads channels)")
    _need(m.dense_hidden >= 0, "dense_hidden", m.dense_hidden, "must be >= 0 (0 = matched to the MoE)")
    _need(0 <= m.moe_start_layer <= m.layers, "moe_start_layer", m.moe_start_layer,
          f"must be between 0 and --layers {m.layers} (= --layers means no MoE layer)")
    _need(e.experts >= 1, "experts", e.experts, "must be at least 1")
    _need(e.top_k >= 1, "top_k", e.top_k, "must be at least 1: every token goes to at least one expert")
    _need(e.top_k <= e.experts, "top_k", e.top_k,
          f"is larger than --experts {e.experts}: top-k picks K of the E experts, so K must be <= E")
    _need(e.shared >= 0, "shared", e.shared, "must be >= 0")
    _need(e.expert_hidden >= 1, "expert_hidden", e.expert_hidden, "must be a positive width")
    _need(e.gating in GATINGS, "gating", e.gating, f"unknown gating mode; choose one of {', '.join(GATINGS)}")
    _need(e.gating != "ste" or e.top_k == 1, "top_k", e.top_k, "--gating ste is hard top-1: use --top-k 1")
    _need(e.expert_init in EXPERT_INITS, "expert_init", e.expert_init, f"choose one of {', '.join(EXPERT_INITS)}")
    _need(e.experts_impl in EXPERTS_IMPLS, "experts_impl", e.experts_impl, f"choose one of {', '.join(EXPERTS_IMPLS)}")
    for name in ("router_init_std", "aux_alpha", "z_alpha", "bias_update_rate"):
        _need(getattr(e, name) >= 0, name, getattr(e, name), "must be >= 0")
    _need(e.capacity_factor >= 0, "capacity_factor", e.capacity_factor, "must be >= 0 (0 = dropless)")
    _need(e.drop_policy in DROP_POLICIES, "drop_policy", e.drop_policy, f"choose one of {', '.join(DROP_POLICIES)}")
    _need(e.capacity_factor == 0 or e.gating != "soft", "capacity_factor", e.capacity_factor,
          "soft gating runs every expert on every token, so nothing can be dropped: use --gating sparse")
    _need(e.capacity_factor == 0 or e.experts_impl == "grouped", "capacity_factor", e.capacity_factor,
          f"a capacity runs its own dispatch (capacity.py), not --experts-impl {e.experts_impl}: use grouped")
    _need(0 < e.collapse_threshold <= 1, "collapse_threshold", e.collapse_threshold, "must be in (0, 1]")
    _need(t.steps >= 0, "steps", t.steps, "must be >= 0 (0 = evaluate only)")
    _need(t.batch >= 1, "batch", t.batch, "must be at least 1 sequence")
    _need(t.batch * m.context <= MAX_TOKENS_PER_STEP, "batch", t.batch,
          f"batch * context = {t.batch * m.context:,} tokens per step; at most {MAX_TOKENS_PER_STEP:,} (2^20): "
          "lower --batch or --context")
    _need(0 <= t.seed <= MAX_SEED, "seed", t.seed, "must be a whole number from 0 to 2^63 - 1")
    _need(t.lr > 0, "lr", t.lr, "must be > 0")
    _need(t.weight_decay >= 0, "weight_decay", t.weight_decay, "must be >= 0")
    _need(t.log_every >= 1, "log_every", t.log_every, "must be at least 1")
    _need(t.eval_tokens >= m.context, "eval_tokens", t.eval_tokens,
          f"must be at least one window (--context {m.context})")
    _need(t.threads >= 1, "threads", t.threads, "must be at least 1")
    _check_parallel(cfg)


def _check_parallel(cfg: Config) -> None:
    """--expert-parallel N: what a sharding over N ranks needs (the launch itself is checked in parallel.py)."""
    m, e, t = cfg.model, cfg.moe, cfg.train
    n = t.expert_parallel
    _need(n >= 1, "expert_parallel", n, "must be at least 1 (1 = one process)")
    if n == 1:
        return
    _need(e.experts % n == 0, "expert_parallel", n, f"must divide --experts {e.experts}: each rank holds E/N experts")
    _need(t.batch % n == 0, "expert_parallel", n, f"must divide --batch {t.batch}: each rank trains on B/N sequences")
    _need(m.moe_start_layer < m.layers, "expert_parallel", n, "the model has no MoE layer to shard: lower "
          "--moe-start-layer")
    _need(e.gating != "soft", "expert_parallel", n,
          "soft gating sends every token to every expert: use --gating sparse")
    _need(e.capacity_factor == 0, "expert_parallel", n,
          "the expert-parallel path is dropless: leave --capacity-factor at 0")
    _need(e.experts_impl == "grouped", "expert_parallel", n, "each rank runs its experts grouped: use "
          "--experts-impl grouped")


# ---------------------------------------------------------------- command line

SECTIONS = (("model", ModelConfig), ("moe", MoEConfig), ("train", TrainConfig))


def config_file_in(argv: list[str], base: Config | None = None) -> Config:
    """`base` (the defaults if None), changed by the config file that argv names with --config, if any.
    Read before the parser is built, so that --help shows the file's values as the defaults."""
    path = None
    for i, a in enumerate(argv):
        if a == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif a.startswith("--config="):
            path = a.split("=", 1)[1]
    return Config.from_file(path, base) if path is not None else (base or Config())


def build_parser(prog: str = "moe-train", description: str = "Train the minimoe toy LM and report routing health.",
                 defaults: Config | None = None, skip: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """Every config field as --kebab-case, defaulting to its value in `defaults` (Config() if None), and
    --config FILE; `skip` leaves out fields a program sets itself. config_from_args reads the parsed flags."""
    defaults = defaults or Config()
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                   help="start from this config file's values (YAML: model, moe and train sections, e.g. a lab's "
                        "labs/phase-NN-*/lab.yaml); the flags given beside it win")
    for section, cls in SECTIONS:
        g = p.add_argument_group(section)
        for f in dataclasses.fields(cls):
            if not f.metadata.get("cli", True) or f.name in skip:
                continue
            kw = {"default": getattr(getattr(defaults, section), f.name), "help": f.metadata["help"],
                  "dest": f"{section}.{f.name}"}
            if f.type in (bool, "bool"):
                kw["action"] = argparse.BooleanOptionalAction
            else:
                kw["type"] = type(f.default)
                if "choices" in f.metadata:
                    kw["choices"] = f.metadata["choices"]
            g.add_argument(flag(f.name), **kw)
    return p


def config_from_args(ns: argparse.Namespace, base: Config | None = None) -> Config:
    """The Config the parsed flags describe (fields a program skipped keep their value in `base`)."""
    d = (base or Config()).to_dict()
    for key, value in vars(ns).items():
        section, _, name = key.partition(".")
        if section in d and name in d[section]:
            d[section][name] = value
    return Config.from_dict(d)

