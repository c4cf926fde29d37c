"""Breaks 37-01 and 37-02's detectors: does the aux-free bias balance the experts on its own?

With the aux loss off, only the selection bias (DeepSeek-V3, sec. 2.1.2) spreads the tokens: after
each step it rises for the experts that got fewer tokens than the mean and falls for the busier ones,
and top-k picks on score + bias. On the lab model (E=256, K=7) it keeps almost every expert alive;
without it, most of them die (seeds 0-9: 32-65 dead with it, 328-417 without it or with it reversed).
"""

import torch

from minimoe.router import Router

from .conftest import LAB

MAX_DEAD = 150  # of 2 x 256 experts; pristine 32-65, broken 328-417 (seeds 0-9)


def test_aux_free_bias_balances_the_load(lab_run, seed):
    res = lab_run(seed)
    health = res.final.health
    dead = sum(h.dead for h in health)
    assert dead <= MAX_DEAD, (
        f"{dead} of {len(health) * LAB.moe.experts} experts got no held-out token with the aux-free bias on "
        f"(aux_alpha 0, bias_update_rate {LAB.moe.bias_update_rate}); per layer: dead {[h.dead for h in health]}, "
        f"cv% {[round(h.cv_pct) for h in health]}, E_eff {[round(h.e_eff, 1) for h in health]}. "
        "The bias is not balancing the load")


def test_bias_update_favours_under_loaded_experts(seed):
    g = torch.Generator().manual_seed(seed)
    E, rate = 16, 0.01
    router = Router(width=8, experts=E, top_k=2, bias_update_rate=rate)
    load_E = torch.randint(0, 50, (E,), generator=g).float()
    load_E[seed % E] = 200.0  # one clearly overloaded expert
    router.update_bias(load_E)
    under, over = load_E < load_E.mean(), load_E > load_E.mean()
    bias = router.bias_E
    assert torch.all(bias[under] > 0) and torch.all(bias[over] < 0), (
        f"after one update with loads {load_E.int().tolist()} (mean {load_E.mean():.1f}) the biases are "
        f"{[round(b, 3) for b in bias.tolist()]}: under-loaded experts must go up, overloaded ones down")


def test_selection_follows_the_bias(seed):
    torch.manual_seed(seed)
    E, favourite = 16, seed % 16
    router = Router(width=8, experts=E, top_k=2, bias_update_rate=0.01)
    router.bias_E[favourite] = 100.0  # far above any score: every token must pick this expert
    with torch.no_grad():
        r = router(torch.randn(64, 8))
    picked = (r.ids_TK == favourite).any(dim=-1).float().mean().item()
    assert picked == 1.0, (
        f"expert {favourite} has a selection bias of +100 but only {picked:.0%} of the tokens picked it: "
        "the bias does not reach top-k")
