"""AdamW for the training loop: torch's own AdamW arithmetic, without torch.optim.Optimizer around it.

Constructing a torch.optim.Optimizer imports torch._dynamo (its methods are wrapped to keep the
compiler out), which took 1.1 s on a 2-core CPU, and 0.4 s more at exit: a fifth of the demo's
`just moe-train --steps 500`. This class keeps the same state (exp_avg, exp_avg_sq, a float step
count per parameter, made at a parameter's first gradient) and calls torch's functional
`torch.optim.adamw.adamw` with foreach=True, which imports nothing more: one multi-tensor op per
step of the update instead of one op per parameter. A test proves its parameters equal to
torch.optim.AdamW's, bit for bit, step after step (tests/core/test_perf.py).
"""

from __future__ import annotations

import torch
from torch.optim.adamw import adamw


class AdamW:
    """torch.optim.AdamW(params, lr, betas, eps, weight_decay) for one group of CPU float parameters."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.state: dict[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        """Drop the gradients (torch's zero_grad(set_to_none=True))."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One AdamW update of every parameter that has a gradient."""
        ps = [p for p in self.params if p.grad is not None]
        if not ps:
            return
        for p in ps:
            if p not in self.state:  # as torch: zero moments and a float32 step count, made lazily
                self.state[p] = (torch.zeros_like(p, memory_format=torch.preserve_format),
                                 torch.zeros_like(p, memory_format=torch.preserve_format), torch.tensor(0.0))
        exp_avgs, exp_avg_sqs, steps = zip(*(self.state[p] for p in ps))
        adamw(ps, [p.grad for p in ps], list(exp_avgs), list(exp_avg_sqs), [], list(steps), foreach=True,
              amsgrad=False, beta1=self.betas[0], beta2=self.betas[1], lr=self.lr,
              weight_decay=self.weight_decay, eps=self.eps, maximize=False)
