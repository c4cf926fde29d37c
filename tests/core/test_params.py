"""P_total and P_active from the formula equal the real modules' parameter counts."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minimoe.config import Config
from minimoe.model import MiniLM
from minimoe.params import (
    count_params,
    counted_active,
    counted_params,
    steps_for,
    token_budget,
)
from minimoe.params import main as params_main


@settings(max_examples=20, deadline=None, derandomize=True)
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
    n_total, n_active = counted_params(model), counted_active(model)
    assert (pc.total, pc.active) == (n_total, n_active), (
        f"E={E} K={K} S={S} layers={layers} moe_start={start} {gating}: the formula gives P_total {pc.total:,}, "
        f"P_active {pc.active:,}; the built model holds {n_total:,} parameters, one token touches {n_active:,}")


def test_dense_model_has_equal_total_and_active():
    cfg = Config().replace(model={"moe_start_layer": 2, "vocab_size": 30})
    pc = count_params(cfg)
    assert pc.total == pc.active and pc.router == 0


def test_a_dense_model_gets_one_budget_and_an_unknown_contract_is_refused():
    pc = count_params(Config().replace(model={"vocab_size": 30, "moe_start_layer": 2}))
    assert token_budget(pc, "totalDN", 8) == token_budget(pc, "activeDN", 8) == 8 * pc.total
    with pytest.raises(ValueError, match="unknown data contract"):
        token_budget(pc, "tokens", 8)


def test_steps_for_a_budget_round_up():
    cfg = Config().replace(train={"batch": 4}, model={"context": 16})
    assert steps_for(64, cfg) == 1 and steps_for(65, cfg) == 2 and steps_for(0, cfg) == 1


def test_matched_active_width_is_k_plus_s_times_f():
    cfg = Config().replace(moe={"experts": 8, "top_k": 2, "shared": 1, "expert_hidden": 12})
    assert cfg.matched_dense_hidden == 36


def test_cli_prints_the_split_and_says_whether_the_modules_agree(capsys):
    rc = params_main(["--experts", "16", "--top-k", "2", "--shared", "1", "--vocab-size", "40", "--alpha", "10",
                      "--beta", "5"])
    out = capsys.readouterr().out
    assert rc == (0 if "(matches the formula)" in out else 1) and "counted from the modules: P_total=" in out
    cfg = Config().replace(model={"vocab_size": 40}, moe={"experts": 16, "top_k": 2, "shared": 1})
    pc = count_params(cfg)
    assert f"{pc.total:,}" in out and f"{pc.active:,}" in out
    for part in ("embeddings", "attention", "norms", "dense ffn", "router", "routed experts", "shared experts", "head"):
        assert part in out
    assert f"{token_budget(pc, 'totalDN', 10):,} tokens" in out and f"{token_budget(pc, 'activeDN', 5):,} tokens" in out
    assert "(K + S) * F = (2 + 1) * 16 = 48" in out


def test_cli_dense_model(capsys):
    assert params_main(["--moe-start-layer", "2", "--dense-hidden", "32", "--vocab-size", "40"]) == 0
    out = capsys.readouterr().out
    assert "MoE layers: 0" in out and "100.0% of P_total" in out


@pytest.mark.parametrize("argv", [["--top-k", "9"], ["--alpha", "0"], ["--vocab-size", "-1"]])
def test_cli_refuses_bad_values(argv, capsys):
    assert params_main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")
