"""Evaluation: held-out loss and perplexity, the routing report, a greedy sample, the dense baseline.

val_loss is the mean next-character cross-entropy (nats) over deterministic held-out windows;
perplexity is exp(val_loss). The dense baseline is the same model with every FFN dense and of
the MoE's active width (K + S) * F, trained on the same tokens with the same seed: the question
an MoE must answer is whether its extra stored experts beat a model that does the same work per
token. A greedy sample and its count of distinct tokens catch a model that has collapsed into
repeating itself, which perplexity alone can understate (the CATASTROPHIC criterion of source note 004, "Bet 38/39").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import Config
from .data import Dataset, eval_windows
from .loss import main_loss_fn
from .model import MiniLM
from .telemetry import LayerHealth, routing_health


@dataclass
class EvalResult:
    val_loss: float
    perplexity: float
    health: list[LayerHealth]


@torch.no_grad()
def evaluate(model: MiniLM, data: Dataset, n_tokens: int) -> EvalResult:
    """Val loss over ~n_tokens held-out tokens, and the routing health on those tokens (one batch)."""
    was_training = model.training
    model.eval()
    x_BS, y_BS = eval_windows(data.val_ids, model.cfg.model.context, n_tokens)
    logits, routings = model(x_BS)
    loss = float(main_loss_fn(logits, y_BS))
    model.train(was_training)
    return EvalResult(loss, math.exp(loss), routing_health(routings, model.moe_layers))


@torch.no_grad()
def greedy_sample(model: MiniLM, prompt_ids: torch.Tensor, n_tokens: int = 100) -> list[int]:
    """Greedy continuation of prompt_ids (1-D) for n_tokens tokens, within the model's context."""
    ctx = model.cfg.model.context
    ids = prompt_ids.tolist()
    for _ in range(n_tokens):
        logits, _ = model(torch.tensor([ids[-ctx:]]))
        ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt_ids):]


def unique_tokens(ids: list[int]) -> int:
    return len(set(ids))


def dense_baseline_config(cfg: Config) -> Config:
    """The dense model of matched active FFN width: every block dense, hidden (K + S) * F."""
    return cfg.replace(model={"moe_start_layer": cfg.model.layers,
                              "dense_hidden": cfg.model.dense_hidden or cfg.matched_dense_hidden})
