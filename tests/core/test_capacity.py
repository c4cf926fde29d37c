"""Capacity and token dropping (--capacity-factor, --drop-policy): the dropping path equals the plain
loop with the dropped assignments' weights set to zero, C = 0 leaves the dropless path as it was, bad
values are refused in one line, and a run under a capacity reports its drops."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minimoe.capacity import expert_capacity, keep_within_capacity, moe_forward_dropping
from minimoe.config import Config, ConfigError
from minimoe.experts import Experts
from minimoe.moe_block import MoEBlock, moe_forward, moe_forward_reference
from minimoe.router import route
from minimoe.train import main, train

SMALL = {"train": {"steps": 6, "batch": 4, "log_every": 3, "eval_tokens": 256, "threads": 1}}


def _grads(fn, x, w, experts):
    x, w = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
    experts.zero_grad()
    y = fn(x, w)
    y.backward(torch.randn_like(y, generator=torch.Generator().manual_seed(1)))
    return [y.detach(), x.grad, w.grad, *[p.grad.clone() for p in experts.parameters()]]


@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 40), E=st.integers(1, 8), D=st.sampled_from([3, 8]), F=st.sampled_from([4, 5]),
       C=st.sampled_from([0.1, 0.5, 1.0, 1.5, 8.0]), policy=st.sampled_from(["position", "probability"]),
       data=st.data())
def test_the_dropping_path_equals_the_loop_with_dropped_weights_zeroed(T, E, D, F, C, policy, data):
    K = data.draw(st.integers(1, E))
    torch.manual_seed(data.draw(st.integers(0, 1000)))
    experts = Experts(E, D, F)
    r = route(torch.randn(T, E) * 3, K)
    keep = keep_within_capacity(r.ids_TK, r.probs_TE, expert_capacity(T, K, E, C), policy)
    w, x = r.weights_TK.detach(), torch.randn(T, D)
    fast = _grads(lambda x, w: moe_forward_dropping(x, r.ids_TK, w, keep, experts), x, w, experts)
    ref = _grads(lambda x, w: moe_forward_reference(x, r.ids_TK, w * keep, experts), x, w, experts)
    for a, b in zip(fast, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_every_expert_keeps_at_most_its_capacity_and_drops_only_past_it():
    torch.manual_seed(0)
    for E, K, C in [(4, 1, 1.0), (8, 2, 1.25), (64, 4, 0.5), (4096, 7, 1.0)]:
        r = route(torch.randn(2048, E) * 2, K)
        cap = expert_capacity(2048, K, E, C)
        keep = keep_within_capacity(r.ids_TK, r.probs_TE, cap, "position")
        asked = torch.bincount(r.ids_TK.reshape(-1), minlength=E)
        kept = torch.bincount(r.ids_TK[keep], minlength=E)
        assert torch.equal(kept, asked.clamp(max=cap)), (E, K, C)


def test_capacity_zero_is_the_dropless_path_bit_for_bit():
    torch.manual_seed(3)
    block = MoEBlock(Config().replace(model={"vocab_size": 8}, moe={"experts": 5, "top_k": 2}))
    x = torch.randn(40, 48)
    y, r = block(x)
    assert r.kept_TK is None and r.capacity == 0
    assert torch.equal(y, moe_forward(x, r.ids_TK, r.weights_TK, block.experts))


@pytest.mark.parametrize("moe,words", [
    ({"capacity_factor": -0.5}, "--capacity-factor -0.5: must be >= 0"),
    ({"capacity_factor": float("inf")}, "--capacity-factor inf: must be a finite number"),
    ({"capacity_factor": 1.0, "gating": "soft"}, "soft gating runs every expert"),
    ({"capacity_factor": 1.0, "experts_impl": "padded"}, "use grouped"),
    ({"drop_policy": "random"}, "--drop-policy 'random': choose one of position, probability"),
])
def test_bad_capacity_settings_are_refused_naming_the_flag(moe, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        Config().replace(moe=moe)


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_a_bad_capacity_factor_is_one_line_and_exit_2(value, capsys):
    assert main([f"--capacity-factor={value}", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --capacity-factor ") and err.count("\n") == 1


def test_a_run_under_a_capacity_reports_its_drops(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["--steps", "6", "--batch", "4", "--log-every", "3", "--eval-tokens", "256", "--threads", "1",
                 "--top-k", "2", "--capacity-factor", "0.5", "--out", str(out), "--no-baseline"])
    assert code == 0
    text = capsys.readouterr().out
    assert "dropped=[ " in text and "% ]" in text
    assert "capacity  kept_max   drop%" in text and "dropped=" in text.split("mean_cv=")[1]
    blob = json.loads((out / "telemetry.json").read_text())
    h = blob["history"][-1]
    assert len(h["dropped"]) == len(h["drop_pct"]) == 2 and all(d >= 50 for d in h["drop_pct"])  # C = 0.5
    assert blob["final_health"][0]["capacity"] == 64  # ceil(0.5 * 256 * 2 / 4)
    assert blob["final_health"][0]["kept_max"] <= 64


def test_a_dropless_run_prints_no_drops(capsys):
    assert main(["--steps", "3", "--batch", "4", "--log-every", "3", "--eval-tokens", "256", "--threads", "1",
                 "--out", "", "--no-baseline"]) == 0
    text = capsys.readouterr().out
    assert "dropped" not in text and "capacity" not in text


def test_every_drop_policy_trains(corpus):
    for policy in ("position", "probability"):
        res = train(Config().replace(moe={"top_k": 2, "capacity_factor": 1.0, "drop_policy": policy}, **SMALL), corpus)
        assert all(h["main"] == h["main"] for h in res.history) and res.final.health[0].capacity > 0
