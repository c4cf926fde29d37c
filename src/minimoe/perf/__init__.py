"""The speed room: other ways to run the MoE layer's experts, and the benchmark that times them.

A learner never has to read this folder. Everything here computes exactly what moe_block.py's
`moe_forward` computes (sort the tokens by expert, run each expert on its rows, weighted sum), in
another layout or on another kernel, and a test proves each equal to the plain reference loop,
forward and backward. One switch chooses, the way Hugging Face's `experts_implementation` does:
`--experts-impl` (config.py), read by model.py through `implementation`:

    grouped  moe_block.moe_forward: tokens sorted by expert, one grouped matmul per weight (the default;
             the fastest for the lab models on a CPU)
    loop     moe_block.moe_forward_reference: one expert at a time (slow; the reference)
    padded   layouts.py: C rows per expert, the busiest expert's count, one batched matmul
    tiered   layouts.py + tiered.py: padded in tiers, so a few busy experts do not pad all the others
    auto     layouts.py: whichever of grouped (ragged.py: its backward gathers, never scatters), padded
             and tiered its cost model prices cheapest
             (faster than grouped with hundreds of experts of a few tokens each; `just bench`)
    triton   grouped_mm_triton.py: the grouped matmul as a Triton kernel (a GPU; optional dependency)

adamw.py is the training loop's AdamW: torch's arithmetic, bit for bit, without the second it takes
to import torch.optim's compiler hooks. bench.py and bench_report.py are `just bench`: the MoE layer
timed beside a dense FFN, its floor, Hugging Face's Mixtral block and a loop, in rounds of pairs, and
the course's speed goals judged on the result. gap.py is `just bench-gap`: goal G5's gap to the floor
split into the dispatch and the grouped matmuls, their operations named by the profiler. profile.py is
`just profile`: where the time of the demo run goes.
"""

from __future__ import annotations

import os

import torch

from ..config import ConfigError
from ..moe_block import moe_forward, moe_forward_reference
from .layouts import auto_forward, padded_forward, tiered_forward

FORWARDS = {"grouped": moe_forward, "loop": moe_forward_reference, "padded": padded_forward,
            "tiered": tiered_forward, "auto": auto_forward}


def implementation(name: str):
    """The function that runs the experts' steps 2-4 for `--experts-impl name`."""
    if name == "triton":
        if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
            raise ConfigError("--experts-impl triton: the Triton kernel needs a CUDA GPU (TRITON_INTERPRET=1 runs it "
                              "on the CPU, very slowly, for tests); choose grouped here")
        try:  # Triton is optional (about 1 GB): imported only when asked for
            from .grouped_mm_triton import triton_forward
        except ImportError:
            raise ConfigError("--experts-impl triton: Triton is not installed; pip install -e '.[triton]', "
                              "or choose another --experts-impl") from None
        return triton_forward
    if name not in FORWARDS:
        raise ConfigError(f"--experts-impl {name!r}: choose one of {', '.join([*FORWARDS, 'triton'])}")
    return FORWARDS[name]
