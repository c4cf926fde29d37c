"""Break 36-02's detector: does the router learn from the main loss at K=1?

With the combine weight taken from a softmax over all E experts, the main loss's gradient reaches
the router (norm ~1e-2 at init on this model). A softmax taken after top-k at K=1 is over one
number: the weight is always exactly 1.0 and the gradient exactly 0 (Megatron-LM issue #894).
The aux loss would still give the router a gradient and hide the bug, so only the main loss is used.
"""

import torch

from minimoe.data import Batches
from minimoe.loss import main_loss_fn
from minimoe.model import MiniLM

from .conftest import LAB

MIN_GRAD_NORM = 1e-6


def test_router_learns_from_main_loss_at_k1(corpus, seed):
    torch.manual_seed(seed)
    model = MiniLM(LAB.replace(model={"vocab_size": corpus.vocab_size}, moe={"top_k": 1}))
    x, y = Batches(corpus.train_ids, LAB.model.context, 8, seed).next()
    logits, _ = model(x)
    main_loss_fn(logits, y).backward()  # main loss only: the aux loss would mask the bug
    norms = [b.router.weight.grad.norm().item() if b.router.weight.grad is not None else 0.0
             for b in model.moe_blocks]
    assert min(norms) > MIN_GRAD_NORM, (
        f"router gradient norm from the main loss per MoE layer: {norms}; the router cannot learn which "
        "expert suits a token")
