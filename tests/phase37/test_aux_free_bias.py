"""Does the aux-free bias balance the experts on its own?

With the aux loss off, only the selection bias (DeepSeek-V3, sec. 2.1.2) spreads the tokens: it is
nudged after each step from that step's expert loads, and top-k picks on score + bias. On the lab
model (E=256, K=7) the bias keeps most experts alive; `dead` counts the experts that got none of
the 4,096 held-out tokens, summed over both MoE layers (of 512).
"""

import torch

from minimoe.router import Router

from .conftest import LAB

MAX_DEAD = 150  # of 2 x 256 experts
MAX_CV_AFTER_PCT = 10.0  # load CV after the bias updates of test_the_bias_update_evens_out_a_skewed_load


def test_aux_free_bias_balances_the_load(lab_run, seed, observe):
    health = lab_run(seed).final.health
    dead = sum(h.dead for h in health)
    observe("dead", dead, MAX_DEAD, "<=")
    assert dead <= MAX_DEAD, (
        f"{dead} of {len(health) * LAB.moe.experts} experts got no held-out token (aux_alpha 0, "
        f"bias_update_rate {LAB.moe.bias_update_rate}); per MoE layer: dead {[h.dead for h in health]}, "
        f"cv% {[round(h.cv_pct) for h in health]}, E_eff {[round(h.e_eff, 1) for h in health]}")


def test_the_bias_update_evens_out_a_skewed_load(seed, observe):
    """One router whose scores favour a few of its 16 experts, the same 4,096 tokens routed 200 times,
    the bias updated from each routing's load, as training does after every step."""
    g = torch.Generator().manual_seed(seed)
    router = Router(width=8, experts=16, top_k=2, bias_update_rate=0.01)
    with torch.no_grad():
        router.weight.copy_(torch.randn(16, 8, generator=g))  # scores far apart: an uneven load
        x = torch.randn(4096, 8, generator=g)
        before = router(x).load_E
        for _ in range(200):
            router.update_bias(router(x).load_E)
        after = router(x).load_E

    def cv(load_E):
        return float(100 * load_E.std(unbiased=False) / load_E.mean())

    observe("cv_after", cv(after), MAX_CV_AFTER_PCT, "<=")
    assert cv(after) <= MAX_CV_AFTER_PCT, (
        f"load CV {cv(before):.0f}% before the 200 bias updates, {cv(after):.0f}% after (loads "
        f"{after.int().tolist()}); bias range {router.bias_E.min().item():+.2f}..{router.bias_E.max().item():+.2f}")


def test_selection_follows_the_bias(seed, observe):
    torch.manual_seed(seed)
    E, favourite = 16, seed % 16
    router = Router(width=8, experts=E, top_k=2, bias_update_rate=0.01)
    router.bias_E[favourite] = 100.0  # far above any score
    with torch.no_grad():
        r = router(torch.randn(64, 8))
    picked = (r.ids_TK == favourite).any(dim=-1).float().mean().item()
    observe("picked", picked, 1.0, ">=")
    assert picked == 1.0, (
        f"expert {favourite} has a selection bias of +100 (the others 0); {picked:.0%} of the 64 tokens "
        "picked it among their 2 experts")
