"""Routing health: is every expert doing its share, or has the router collapsed?

Per MoE layer, from one batch's Routing record:

  counts          tokens each expert processed (soft gating: its gate mass)
  max_load        largest share of the T*K assignments that one expert got. Ceiling 1/K (at K=1,
                  1.0 = every token to one expert); perfect balance is 1/E
  cv_pct          coefficient of variation of the counts, std/mean in %. 0 = perfectly even
  cv_random_pct   the CV that assigning the same tokens uniformly at random would give,
                  100*sqrt((E-1)/(T*K)): with few tokens per expert, imbalance is partly sampling,
                  so compare cv_pct with this before calling anything collapse
  load_entropy    entropy of the load distribution (nats); log E when even, 0 when collapsed
  e_eff           exp(load_entropy): how many experts the layer effectively uses
  router_entropy  mean and min over tokens of the entropy of probs_TE (per-token confidence;
                  it can stay near log E while the load collapses, so it is a weak detector)
  dead            experts that got no tokens (soft gating: less than half a token of gate mass)
  weight_sum      mean over tokens of the sum of its combine weights (1.0 when correct)
  weight_min/max  the smallest and largest combine weight (must lie in [0, 1])
  capacity        assignments one expert may take in this batch (--capacity-factor); 0 = dropless
  dropped         (token, expert) assignments that found their expert full and were dropped
  drop_pct        dropped as a % of the T*K assignments
  kept_max        the most assignments one expert processed (at most capacity, when there is one)

Across layers: mean CV, the worst (largest) max_load, the min load entropy and
E_eff = exp(min load entropy), as in the Super-4096 dashboard, and the mean drop_pct. `CollapseTracker` records, per
layer, the first step at which max_load >= threshold * (1/K): collapse is not uniform in depth.
A layer is named by the index of its block (L1: the MoE layer of block 1).
All functions are pure (tensors in, dataclasses out).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from .router import Routing


@dataclass
class LayerHealth:
    layer: int  # index of the block this MoE layer is in
    counts: list[float]
    max_load: float
    cv_pct: float
    cv_random_pct: float
    load_entropy: float
    e_eff: float
    router_entropy_mean: float
    router_entropy_min: float
    dead: int
    weight_sum: float
    weight_min: float
    weight_max: float
    capacity: int = 0
    dropped: int = 0
    drop_pct: float = 0.0
    kept_max: int = 0


def cv_random_pct(experts: int, assignments: int) -> float:
    """CV% of E counts under uniform random assignment of `assignments` tokens: sqrt((E-1)/n)."""
    return 100.0 * math.sqrt((experts - 1) / max(assignments, 1))


@torch.no_grad()
def kept_counts(r: Routing) -> torch.Tensor:
    """Assignments each expert processed: those routed to it, less the ones its capacity dropped."""
    if r.kept_TK is None:
        return r.load_E
    return torch.bincount(r.ids_TK[r.kept_TK], minlength=r.load_E.numel()).float()


def dropped_count(r: Routing) -> int:
    """Assignments dropped for want of room in their expert (0 when dropless)."""
    return 0 if r.kept_TK is None else int((~r.kept_TK).sum())


@torch.no_grad()
def layer_health(r: Routing, layer: int) -> LayerHealth:
    load_E = r.load_E.float()
    E, total = load_E.numel(), float(load_E.sum())
    share_E = load_E / max(total, 1e-12)
    ent_E = -(share_E * share_E.clamp_min(1e-12).log()).sum()
    p = r.probs_TE.float()
    tok_ent_T = -(p * p.clamp_min(1e-12).log()).sum(-1)
    w = r.weights_TK.float()
    return LayerHealth(
        layer=layer,
        counts=[round(float(c), 3) for c in load_E.tolist()],
        max_load=float(share_E.max()),
        cv_pct=float(100 * load_E.std(unbiased=False) / load_E.mean().clamp_min(1e-12)),
        cv_random_pct=cv_random_pct(E, round(total)),
        load_entropy=float(ent_E),
        e_eff=float(ent_E.exp()),
        router_entropy_mean=float(tok_ent_T.mean()),
        router_entropy_min=float(tok_ent_T.min()),
        dead=int((load_E < 0.5).sum()),
        weight_sum=float(w.sum(-1).mean()),
        weight_min=float(w.min()),
        weight_max=float(w.max()),
        capacity=r.capacity,
        dropped=dropped_count(r),
        drop_pct=100.0 * dropped_count(r) / r.ids_TK.numel(),
        kept_max=round(float(kept_counts(r).max())),
    )


def routing_health(routings: list[Routing], layers: list[int]) -> list[LayerHealth]:
    """One LayerHealth per MoE layer; layers: their block indices (MiniLM.moe_layers)."""
    return [layer_health(r, i) for r, i in zip(routings, layers, strict=True)]


@dataclass
class HealthSummary:
    mean_cv_pct: float
    max_load: float  # worst layer
    min_entropy: float  # min over layers of the load entropy
    e_eff: float  # exp(min_entropy): the worst layer's effective expert count
    dead: int  # summed over layers
    layers: int
    drop_pct: float = 0.0  # mean over layers: assignments dropped for want of capacity, %


def summarize(health: list[LayerHealth]) -> HealthSummary | None:
    if not health:
        return None
    min_ent = min(h.load_entropy for h in health)
    return HealthSummary(
        mean_cv_pct=sum(h.cv_pct for h in health) / len(health),
        max_load=max(h.max_load for h in health),
        min_entropy=min_ent,
        e_eff=math.exp(min_ent),
        dead=sum(h.dead for h in health),
        layers=len(health),
        drop_pct=sum(h.drop_pct for h in health) / len(health),
    )


class CollapseTracker:
    """First step at which each layer's max_load reaches threshold * (1/K) (None: never)."""

    def __init__(self, n_layers: int, top_k: int, threshold: float):
        self.limit = threshold / top_k
        self.first_step: list[int | None] = [None] * n_layers

    def update(self, step: int, max_loads: list[float]) -> None:
        for i, m in enumerate(max_loads):
            if self.first_step[i] is None and m >= self.limit:
                self.first_step[i] = step


def health_dict(health: list[LayerHealth]) -> list[dict]:
    return [asdict(h) for h in health]
