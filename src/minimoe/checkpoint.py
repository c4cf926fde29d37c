"""Checkpoints: the model's weights, its config and its vocabulary in one file.

Saved with torch.save, loaded with torch.load(weights_only=True), so a checkpoint cannot run
code. Writes are atomic (files.atomic_write): an interrupted save never leaves a half-written
checkpoint. A file that is truncated, not a checkpoint, missing a part, or from another model
config is refused with a message that says which.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from .config import Config, ConfigError
from .files import atomic_write

FORMAT = "minimoe-checkpoint-1"
# fields that may differ between the run that saved a checkpoint and the run that loads it
_FREE_FIELDS = {"train", "moe.aux_alpha", "moe.z_alpha", "moe.bias_update_rate", "moe.collapse_threshold",
                "moe.experts_impl"}
# what a checkpoint holds, and the type of each part
_PARTS = {"config": dict, "vocab": str, "step": int, "state": dict}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why and what to do."""


def save_checkpoint(path: str, model: torch.nn.Module, cfg: Config, vocab: str, step: int) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "config": cfg.to_dict(), "vocab": vocab, "step": step,
            "state": model.state_dict()}
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write(p, buf.getvalue())


def load_checkpoint(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"--load {path}: no such file")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle of arbitrary objects, random bytes...
        raise CheckpointError(f"--load {path}: not a readable minimoe checkpoint (truncated or another "
                              f"kind of file: {type(e).__name__}); train again with --save") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"--load {path}: not a minimoe checkpoint (expected format {FORMAT})")
    bad = [f"{k} (missing)" if k not in blob else f"{k} (a {type(blob[k]).__name__}, not a {t.__name__})"
           for k, t in _PARTS.items() if not isinstance(blob.get(k), t)]
    state = blob.get("state") if isinstance(blob.get("state"), dict) else {}
    bad += [f"state[{k!r}] (not a tensor)" for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"--load {path}: a damaged minimoe checkpoint: {', '.join(bad[:4])}; "
                              "train again with --save")
    try:
        blob["cfg"] = Config.from_dict(blob["config"])
    except ConfigError as e:
        raise CheckpointError(f"--load {path}: its config cannot be read: {e}") from None
    return blob


def config_mismatch(saved: Config, wanted: Config) -> list[str]:
    """The model fields where two configs differ (training fields may differ freely)."""
    a, b = saved.to_dict(), wanted.to_dict()
    diffs = []
    for section in ("model", "moe"):
        for k, v in a[section].items():
            if section == "model" and k == "vocab_size":
                continue
            if f"{section}.{k}" not in _FREE_FIELDS and b[section].get(k) != v:
                diffs.append(f"--{k.replace('_', '-')} {b[section].get(k)} (checkpoint: {v})")
    return diffs
