"""`just experiment super4096` runs end to end and prints the seed's dashboard (a small, fast version)."""

import pytest

from minimoe.experiments import super4096


@pytest.mark.slow
def test_super4096_prints_the_dashboard(capsys):
    assert super4096.main(["--experts", "8,32", "--steps", "6", "--batch", "4", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    for column in ("tok/expert", "cv_rand%", "max_load", "E_eff", "dead", "collapse@"):
        assert column in out
    assert "E=8" in out and "E=32" in out


@pytest.mark.slow
def test_super4096_falsifier_arms(capsys):
    assert super4096.main(["--falsify", "--falsify-at", "16", "--steps", "4", "--batch", "4", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    for arm in ("no balancing", "aux 1e-4", "aux 0.01", "aux-free bias"):
        assert arm in out


def test_bad_flags_get_a_message(capsys):
    assert super4096.main(["--experts", "", "--steps", "5"]) == 2
    assert "error:" in capsys.readouterr().err
