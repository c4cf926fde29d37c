"""Training: reproducible, prints the seed's step lines, writes its outputs, checkpoints safely."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from minimoe.checkpoint import CheckpointError, load_checkpoint
from minimoe.config import Config
from minimoe.train import main, train

SMALL = {"train": {"steps": 12, "batch": 4, "log_every": 4, "eval_tokens": 256, "threads": 1}}


def test_same_seed_gives_bit_identical_losses(corpus):
    cfg = Config().replace(**SMALL)
    a = train(cfg, corpus)
    b = train(cfg, corpus)
    assert [h["main"] for h in a.history] == [h["main"] for h in b.history]
    assert a.final.val_loss == b.final.val_loss
    c = train(cfg.replace(train={"seed": 1}), corpus)
    assert [h["main"] for h in a.history] != [h["main"] for h in c.history]


def test_training_lowers_the_loss(corpus):
    res = train(Config().replace(train={"steps": 60, "batch": 8, "eval_tokens": 256, "threads": 1}), corpus)
    assert res.history[-1]["main"] < res.history[0]["main"] - 1.0


@pytest.mark.parametrize("gating,k", [("soft", 1), ("ste", 1), ("sparse", 2)])
def test_every_gating_mode_trains(corpus, gating, k):
    res = train(Config().replace(moe={"gating": gating, "top_k": k}, **SMALL), corpus)
    assert all(torch.isfinite(torch.tensor(h["main"])) for h in res.history)


def test_bias_update_moves_the_bias(corpus):
    res = train(Config().replace(moe={"bias_update_rate": 0.01, "aux_alpha": 0.0}, **SMALL), corpus)
    assert any(b.router.bias_E.abs().sum() > 0 for b in res.model.moe_blocks)


def test_cli_prints_step_lines_and_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["--steps", "8", "--batch", "4", "--log-every", "4", "--eval-tokens", "256", "--threads", "1",
                 "--out", str(out), "--save", str(tmp_path / "ck.pt")])
    assert code == 0
    text = capsys.readouterr().out
    assert "step=4  main=" in text and "aux=" in text and "expert_counts=[" in text
    assert "val_loss=" in text and "(dense_baseline=" in text
    blob = json.loads((out / "telemetry.json").read_text())
    assert len(blob["history"]) == 8 and blob["params"]["total"] > blob["params"]["active"]
    assert (out / "load.png").stat().st_size > 1000
    assert load_checkpoint(str(tmp_path / "ck.pt"))["step"] == 8


def test_checkpoint_round_trip_and_refusals(tmp_path, capsys):
    ck = tmp_path / "ck.pt"
    args = ["--steps", "4", "--batch", "4", "--eval-tokens", "256", "--threads", "1", "--out", "", "--no-baseline"]
    assert main(args + ["--save", str(ck)]) == 0
    capsys.readouterr()
    assert main(args[:1] + ["0"] + args[2:] + ["--load", str(ck)]) == 0  # evaluate only
    assert main(args + ["--load", str(ck), "--experts", "8"]) == 2
    assert "--experts 8 (checkpoint: 4)" in capsys.readouterr().err
    truncated = tmp_path / "half.pt"
    truncated.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    garbage = tmp_path / "notes.pt"
    garbage.write_text("hello")
    for bad in (truncated, garbage, tmp_path / "missing.pt"):
        with pytest.raises(CheckpointError):
            load_checkpoint(str(bad))
        assert main(args + ["--load", str(bad)]) == 2
    evil = tmp_path / "evil.pt"
    torch.save({"format": "minimoe-checkpoint-1", "obj": Config()}, evil)  # not loadable with weights_only
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(str(evil))


def test_ctrl_c_during_training_keeps_what_was_measured(tmp_path, monkeypatch, capsys):
    from minimoe import train as train_mod
    from minimoe.perf.adamw import AdamW

    real_step = AdamW.step
    calls = {"n": 0}

    def step_then_interrupt(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real_step(self, *a, **k)

    monkeypatch.setattr(AdamW, "step", step_then_interrupt)
    out = tmp_path / "run"
    code = train_mod.main(["--steps", "50", "--batch", "4", "--eval-tokens", "256", "--threads", "1",
                           "--out", str(out), "--save", str(tmp_path / "ck.pt")])
    assert code == 130
    assert "interrupted at step 5" in capsys.readouterr().err
    blob = json.loads((out / "telemetry.json").read_text())
    assert blob["interrupted"] is True and len(blob["history"]) == 5
    assert not (tmp_path / "ck.pt").exists()  # no checkpoint of a half-finished run


def test_an_existing_folder_as_save_or_a_file_as_out_is_refused_before_training(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    for argv, words in ((["--save", str(tmp_path)], "is a folder"), (["--out", str(a_file)], "is a file"),
                        (["--save", str(a_file / "ck.pt")], "is a file, so no file")):
        assert main(["--steps", "1000000", "--no-baseline", "--out", "", *argv]) == 2  # refused at once
        err = capsys.readouterr().err
        assert err.startswith("error: --") and words in err and err.count("\n") == 1
    assert a_file.read_text() == "keep me"


@pytest.mark.parametrize("blob,words", [
    ({"format": "minimoe-checkpoint-1", "config": "model: tiny", "vocab": "ab", "step": 1, "state": {}},
     "config (a str, not a dict)"),
    ({"format": "minimoe-checkpoint-1", "config": {}, "vocab": "ab", "step": 1}, "state (missing)"),
    ({"format": "minimoe-checkpoint-1", "config": {"model": "x"}, "vocab": "ab", "step": 1, "state": {}},
     "its config cannot be read"),
    ({"format": "minimoe-checkpoint-1", "config": {}, "vocab": "ab", "step": 1, "state": {"w": 3}}, "not a tensor"),
])
def test_a_hand_built_checkpoint_is_refused_in_one_line(tmp_path, blob, words, capsys):
    ck = tmp_path / "hand.pt"
    torch.save(blob, ck)
    with pytest.raises(CheckpointError, match=re.escape(words)):
        load_checkpoint(str(ck))
    assert main(["--steps", "0", "--no-baseline", "--out", "", "--load", str(ck)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --load {ck}") and err.count("\n") == 1


def test_layers_are_named_by_their_block_index(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--steps", "4", "--batch", "2", "--layers", "3", "--moe-start-layer", "1", "--log-every", "4",
                 "--eval-tokens", "128", "--threads", "1", "--no-baseline", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    table = text.split("routing health")[1].splitlines()[2:4]
    assert [row.split()[0] for row in table] == ["1", "2"]  # blocks 1 and 2 are the MoE ones
    assert "L1: " in text and "L2: " in text and "L0" not in text
    blob = json.loads((out / "telemetry.json").read_text())
    assert blob["moe_layers"] == [1, 2] and [h["layer"] for h in blob["final_health"]] == [1, 2]


def test_the_dense_baseline_cache_follows_minimoe_cache_set_after_import(tmp_path, monkeypatch, corpus):
    from minimoe.train import dense_baseline

    monkeypatch.setenv("MINIMOE_CACHE", str(tmp_path / "cache"))
    cfg = Config().replace(train={"steps": 2, "batch": 2, "eval_tokens": 128, "threads": 1})
    dense_baseline(cfg, corpus)
    assert len(list((tmp_path / "cache").glob("dense-*.json"))) == 1


@pytest.mark.slow  # a fresh process through just: seconds
def test_data_with_a_space_in_its_name_reaches_training_whole(tmp_path):
    """Through the justfile: the recipe passes each argument on as it was typed."""
    just = shutil.which("just")
    if just is None:
        pytest.skip("just is not installed (pip install rust-just)")
    text = tmp_path / "my corpus.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 60, encoding="utf-8")
    root = Path(__file__).resolve().parents[2]
    p = subprocess.run([just, "moe-train", "--data", str(text), "--steps", "1", "--context", "16", "--no-baseline",
                        "--out", "", "--eval-tokens", "64", "--threads", "1"], cwd=root, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-500:]
    assert "val_loss=" in p.stdout
