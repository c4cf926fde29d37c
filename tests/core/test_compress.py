"""Expert compression (compress.py): each method does what its name says, and only that."""

import copy
import math

import pytest
import torch

from minimoe.compress import (
    CATASTROPHIC,
    LENIENT,
    STRICT,
    Compression,
    average_experts,
    expert_diversity,
    magnitude_prune,
    main,
    moe_weights,
    prune_magnitude,
    quantize_ternary,
    recover,
    routing_changes,
    verdict,
)
from minimoe.config import Config
from minimoe.model import MiniLM

TINY = {"model": {"width": 16, "heads": 2, "context": 16},
        "moe": {"experts": 4, "top_k": 2, "expert_hidden": 8, "shared": 1},
        "train": {"steps": 6, "batch": 4, "eval_tokens": 64, "threads": 1, "baseline": False, "out": ""}}


def _model(corpus, **moe) -> MiniLM:
    torch.manual_seed(0)
    cfg = Config().replace(**{**TINY, "moe": {**TINY["moe"], **moe}})
    return MiniLM(cfg.replace(model={"vocab_size": corpus.vocab_size}))


def _experts(model):
    return [(n, w) for n, w in moe_weights(model) if ".experts." in n]


def test_ternary_leaves_three_values_in_each_expert_matrix(corpus):
    model = _model(corpus)
    quantize_ternary(model)
    for name, w in _experts(model):
        for e in range(w.shape[0]):
            values = w[e].detach().unique()
            s = values.abs().max()
            assert len(values) == 3 and torch.equal(values, torch.stack([-s, torch.zeros(()), s])), (
                f"{name}[{e}] holds {len(values)} distinct values after ternary quantisation: "
                f"{values[:6].tolist()}{' ...' if len(values) > 6 else ''}")


def test_pruning_zeroes_half_of_each_expert_matrix(corpus):
    model = _model(corpus)
    prune_magnitude(model, 0.5)
    for name, w in _experts(model):
        for e in range(w.shape[0]):
            zero = (w[e] == 0).float().mean().item()
            assert zero == pytest.approx(0.5, abs=1 / w[e].numel()), f"{name}[{e}]: {zero:.1%} of it is zero"


def test_magnitude_prune_sparsity_zero_changes_nothing():
    w = torch.randn(5, 7)
    assert torch.equal(magnitude_prune(w, 0.0), w)


def test_averaging_makes_every_expert_the_mean(corpus):
    model = _model(corpus)
    means = {n: w.detach().mean(0) for n, w in _experts(model)}
    shared = model.moe_blocks[0].shared.w_up_DF.detach().clone()
    average_experts(model)
    for name, w in _experts(model):
        for e in range(w.shape[0]):
            torch.testing.assert_close(w[e], means[name])
    assert torch.equal(model.moe_blocks[0].shared.w_up_DF, shared)  # the shared expert is one expert already
    assert all(d["spread"] == pytest.approx(0.0, abs=1e-6) for d in expert_diversity(model))


def test_diversity_shows_the_one_over_sqrt_e_shrink_of_independent_experts(corpus):
    same = expert_diversity(_model(corpus, expert_init="same", experts=16))
    indep = expert_diversity(_model(corpus, expert_init="independent", experts=16))
    assert all(d["spread"] == pytest.approx(0.0, abs=1e-6) and d["avg_norm"] == pytest.approx(1.0) for d in same)
    assert all(abs(d["avg_norm"] - 1 / math.sqrt(16)) < 0.05 for d in indep)


def test_first_layer_routing_survives_expert_compression(corpus):
    model = _model(corpus)
    x = corpus.val_ids[:64].view(4, 16)
    for method in (quantize_ternary, prune_magnitude, average_experts):
        compressed = copy.deepcopy(model)
        method(compressed)
        changed = routing_changes(model, compressed, x)
        assert changed[0] == 0.0, (f"after {method.__name__}: {changed[0]:.1%} of 64 tokens go to another "
                                   f"first-choice expert in the first MoE layer (per layer {changed})")


def test_recovery_keeps_each_compression(corpus):
    for method in (average_experts, quantize_ternary, prune_magnitude):
        model = _model(corpus)
        c = method(model)
        frozen = {n: w.detach().clone() for n, w in _experts(model)}
        attention = model.blocks[0].attn.qkv.weight.detach().clone()
        recover(model, corpus, c, steps=3, lr=1e-2)
        assert not torch.equal(attention, model.blocks[0].attn.qkv.weight)  # the rest of the model trains
        for name, w in _experts(model):
            if method is average_experts:
                assert all(torch.equal(w[e], w[0]) for e in range(w.shape[0])), "averaged experts drifted apart"
            elif method is quantize_ternary:
                assert torch.equal(w, frozen[name])
            else:
                assert torch.equal(w == 0, frozen[name] == 0), "a pruned weight came back"


def test_recovery_without_compression_trains_everything(corpus):
    model = _model(corpus)
    before = [p.detach().clone() for p in model.parameters()]
    recover(model, corpus, Compression("none"), steps=2, lr=1e-2)
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_verdicts_follow_the_pre_registered_criteria():
    assert verdict(1.0, 20) == "STRICT" and verdict(STRICT, 20) == "STRICT"
    assert verdict(1.51, 20) == "LENIENT" and verdict(LENIENT, 20) == "LENIENT"
    assert verdict(3.01, 20) == "FAILS LENIENT" and verdict(CATASTROPHIC, 20) == "FAILS LENIENT"
    assert verdict(10.01, 20) == "CATASTROPHIC"
    assert verdict(1.0, 4) == "CATASTROPHIC"  # mode collapse, whatever the perplexity


def _cli(args, capsys):
    flags = ["--width", "16", "--heads", "2", "--context", "16", "--experts", "4", "--expert-hidden", "8",
             "--batch", "4", "--eval-tokens", "64", "--threads", "1"]
    rc = main(flags + args)
    return rc, capsys.readouterr()


def test_cli_prints_the_verdict_of_each_method(capsys):
    rc, out = _cli(["--steps", "5", "--recover-steps", "2"], capsys)
    assert rc == 0, out.err
    for label in ("average", "ternary", "prune 50%", "original +2 steps", "prune 50% +2 steps"):
        assert any(line.startswith(label + " ") for line in out.out.splitlines()), label
    assert "kept L0 router, L1 router" in out.out and "verdict (STRICT <= 1.5x" in out.out


def test_cli_compresses_a_saved_checkpoint(tmp_path, capsys):
    from minimoe.train import main as train_main

    ckpt = str(tmp_path / "m.pt")
    assert train_main(["--steps", "3", "--batch", "2", "--eval-tokens", "64", "--threads", "1", "--out", "",
                       "--no-baseline", "--save", ckpt]) == 0
    capsys.readouterr()
    rc = main(["--load", ckpt, "--method", "average", "--eval-tokens", "64", "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and "E=4 K=1" in out and f"loaded {ckpt}" in out  # the checkpoint's config, not the defaults


@pytest.mark.parametrize("args,msg", [(["--sparsity", "1.5"], "--sparsity"), (["--recover-steps", "-1"], "--recover"),
                                      (["--load", "/no/such/file"], "no such file"),
                                      (["--top-k", "9"], "--top-k")])
def test_cli_refuses_bad_input_with_a_message(args, msg, capsys):
    rc, out = _cli(args, capsys)
    assert rc == 2 and msg in out.err and "Traceback" not in out.err
