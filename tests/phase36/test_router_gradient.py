"""Does the router learn from the main loss at K=1?

Only the main loss is backpropagated: the aux loss always gives the router a gradient of its own,
towards balance, whatever the main loss does. On a fresh lab model the main loss's gradient reaches
every router with a norm of about 1e-2.
"""

import torch

from minimoe.data import Batches
from minimoe.loss import main_loss_fn
from minimoe.model import MiniLM

from .conftest import LAB

MIN_GRAD_NORM = 1e-6


def test_router_learns_from_main_loss_at_k1(corpus, seed, observe):
    torch.manual_seed(seed)
    model = MiniLM(LAB.replace(model={"vocab_size": corpus.vocab_size}, moe={"top_k": 1}))
    x, y = Batches(corpus.train_ids, LAB.model.context, 8, seed).next()
    logits, _ = model(x)
    main_loss_fn(logits, y).backward()  # the main loss alone
    norms = [b.router.weight.grad.norm().item() if b.router.weight.grad is not None else 0.0
             for b in model.moe_blocks]
    observe("router_grad", min(norms), MIN_GRAD_NORM, ">=")
    assert min(norms) > MIN_GRAD_NORM, (
        f"router gradient norm from the main loss alone, per MoE layer, at K=1: {[f'{n:.3g}' for n in norms]}")
