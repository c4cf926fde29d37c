"""Checkpoints: the model's weights, its config and its vocabulary in one file.

Saved with torch.save, loaded with torch.load(weights_only=True), so a checkpoint cannot run
code. Writes are atomic (a temp file renamed into place): an interrupted save never leaves a
half-written checkpoint. A file that is truncated, not a checkpoint, or from another model
config is refused with a message that says which.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .config import Config, ConfigError

FORMAT = "minimoe-checkpoint-1"
# fields that may differ between the run that saved a checkpoint and the run that loads it
_FREE_FIELDS = {"train", "moe.aux_alpha", "moe.z_alpha", "moe.bias_update_rate", "moe.collapse_threshold"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why and what to do."""


def save_checkpoint(path: str, model: torch.nn.Module, cfg: Config, vocab: str, step: int) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "config": cfg.to_dict(), "vocab": vocab, "step": step,
            "state": model.state_dict()}
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(blob, f)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    try:
        blob["cfg"] = Config.from_dict(blob["config"])
    except (ConfigError, KeyError) as e:
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
