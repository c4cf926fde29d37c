"""Phase 38 and 39's experiments run end to end on a few steps (slow: each trains several models)."""

import pytest

from minimoe.experiments import run

pytestmark = pytest.mark.slow


def test_gating_experiment_prints_every_mode_and_the_source_notes_claim(capsys):
    assert run("gating", ["--steps", "3", "--seeds", "1", "--aux", "0,0.1", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    for mode in ("sparse-top1", "sparse-top2", "ste-top1", "soft"):
        assert out.count(f"\n{mode} ") >= 4, mode  # two aux rows in each table
    assert "source note 001's claim" in out and "P_total" in out


def test_gating_experiment_refuses_an_unknown_mode(capsys):
    assert run("gating", ["--modes", "sparse-top3"]) == 2
    assert "unknown sparse-top3" in capsys.readouterr().err


def test_compression_experiment_summarises_every_method(capsys):
    assert run("compression", ["--steps", "3", "--seeds", "1", "--recover-steps", "1", "--workers", "1",
                               "--experts", "4"]) == 0
    out = capsys.readouterr().out
    for line in ("same         average", "independent  prune", "same         control", "averaging meets LENIENT"):
        assert line in out


def test_load_checks_are_exact_on_pristine_code(capsys):
    assert run("load_checks", ["--seeds", "1"]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    assert row[1] == "0.000" and row[3] == "1.000" and row[4] == "3"
