"""The tiny decoder-only language model whose FFN layers are dense or MoE.

A GPT in the style of nanoGPT: token + position embeddings, `layers` pre-norm blocks of causal
self-attention and an FFN, a final norm and a linear head to the vocabulary. Blocks with index
>= `moe_start_layer` use an MoE FFN (moe_block.py), the others a dense SwiGLU FFN whose width is
matched to the MoE's active width (K + S) * F unless `--dense-hidden` says otherwise. Setting
`moe_start_layer = layers` gives the fully dense model used as the baseline.

forward returns the logits and the list of Routing records, one per MoE block, so the loss
(loss.py) and the telemetry (telemetry.py) see what every router decided. A layer is named by its
block's index everywhere (L1 is block 1's MoE layer); `moe_layers` lists them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import perf
from .config import Config
from .moe_block import DenseFFN, MoEBlock
from .router import Routing


class Attention(nn.Module):
    def __init__(self, width: int, heads: int, depth_scale: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)
        nn.init.normal_(self.qkv.weight, std=1 / math.sqrt(width))
        nn.init.normal_(self.proj.weight, std=depth_scale / math.sqrt(width))

    def forward(self, x_BSD: torch.Tensor) -> torch.Tensor:
        B, S, D = x_BSD.shape
        q, k, v = self.qkv(x_BSD).view(B, S, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, heads, S, D/heads)
        return self.proj(y.transpose(1, 2).reshape(B, S, D))


class Block(nn.Module):
    def __init__(self, cfg: Config, is_moe: bool):
        super().__init__()
        m = cfg.model
        depth_scale = 1 / math.sqrt(2 * m.layers)  # residual branches start small, as in GPT-2
        self.norm1 = nn.RMSNorm(m.width)
        self.attn = Attention(m.width, m.heads, depth_scale)
        self.norm2 = nn.RMSNorm(m.width)
        self.is_moe = is_moe
        if is_moe:  # --experts-impl: how the experts run, never what they compute (perf/)
            self.ffn = MoEBlock(cfg, depth_scale, perf.implementation(cfg.moe.experts_impl))
        else:
            self.ffn = DenseFFN(m.width, m.dense_hidden or cfg.matched_dense_hidden, depth_scale)

    def forward(self, x_BSD: torch.Tensor) -> tuple[torch.Tensor, Routing | None]:
        x_BSD = x_BSD + self.attn(self.norm1(x_BSD))
        h_TD = self.norm2(x_BSD).reshape(-1, x_BSD.shape[-1])
        if self.is_moe:
            y_TD, routing = self.ffn(h_TD)
        else:
            y_TD, routing = self.ffn(h_TD), None
        return x_BSD + y_TD.view_as(x_BSD), routing


class MiniLM(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        m = cfg.model
        if m.vocab_size < 1:
            raise ValueError("model.vocab_size is not set: build the model after loading the data")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(m.vocab_size, m.width)
        self.pos_emb = nn.Embedding(m.context, m.width)
        nn.init.normal_(self.tok_emb.weight, std=1.0)
        nn.init.normal_(self.pos_emb.weight, std=0.1)
        self.blocks = nn.ModuleList(Block(cfg, is_moe=(i >= m.moe_start_layer)) for i in range(m.layers))
        self.norm_f = nn.RMSNorm(m.width)
        self.head = nn.Linear(m.width, m.vocab_size, bias=False)
        nn.init.normal_(self.head.weight, std=1 / math.sqrt(m.width))

    @property
    def moe_blocks(self) -> list[MoEBlock]:
        return [b.ffn for b in self.blocks if b.is_moe]

    @property
    def moe_layers(self) -> list[int]:
        """The index of each MoE block: the names of the MoE layers, in the order of the Routing records."""
        return [i for i, b in enumerate(self.blocks) if b.is_moe]

    def forward(self, idx_BS: torch.Tensor) -> tuple[torch.Tensor, list[Routing]]:
        B, S = idx_BS.shape
        x_BSD = self.tok_emb(idx_BS) + self.pos_emb(torch.arange(S, device=idx_BS.device))
        routings = []
        for block in self.blocks:
            x_BSD, r = block(x_BSD)
            if r is not None:
                routings.append(r)
        return self.head(self.norm_f(x_BSD)), routings
