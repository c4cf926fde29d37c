"""P_total and P_active from the formula equal the real modules' parameter counts."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minimoe.config import Config
from minimoe.model import MiniLM
from minimoe.params import count_params, counted_params, token_budget


def _active_by_counting(model: MiniLM) -> int:
    """Active parameters counted from the modules: every parameter, minus the routed experts a token skips."""
    n = counted_params(model)
    for block in model.moe_blocks:
        E = block.experts.n
        k = E if block.gating == "soft" else block.router.top_k
        per_expert = sum(p.numel() for p in block.experts.parameters()) // E
        n -= (E - k) * per_expert
    return n


@settings(max_examples=20, deadline=None)
@given(E=st.integers(1, 9), S=st.integers(0, 2), layers=st.integers(1, 3), data=st.data())
def test_formula_matches_the_modules(E, S, layers, data):
    K = data.draw(st.integers(1, E))
    start = data.draw(st.integers(0, layers))
    gating = data.draw(st.sampled_from(["sparse", "soft"]))
    cfg = Config().replace(model={"width": 12, "heads": 3, "layers": layers, "context": 16, "vocab_size": 23,
                                  "moe_start_layer": start},
                           moe={"experts": E, "top_k": K, "shared": S, "expert_hidden": 5, "gating": gating})
    model = MiniLM(cfg)
    pc = count_params(cfg)
    assert pc.total == counted_params(model)
    assert pc.active == _active_by_counting(model)


def test_dense_model_has_equal_total_and_active():
    cfg = Config().replace(model={"moe_start_layer": 2, "vocab_size": 30})
    pc = count_params(cfg)
    assert pc.total == pc.active and pc.router == 0


def test_token_budgets_under_the_two_contracts():
    pc = count_params(Config().replace(model={"vocab_size": 30}, moe={"experts": 16, "shared": 1}))
    assert token_budget(pc, "totalDN", 8) == 8 * pc.total
    assert token_budget(pc, "activeDN", 8) == 8 * pc.active
    assert pc.total > pc.active
    with pytest.raises(ValueError, match="unknown data contract"):
        token_budget(pc, "tokens", 8)
