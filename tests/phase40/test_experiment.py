"""`just experiment fair` runs end to end: both contracts, a ranking under each (a small, fast version)."""

import pytest

from minimoe.experiments import fair


@pytest.mark.slow
def test_fair_ranks_under_both_contracts(capsys):
    assert fair.main(["--experts", "4", "--dense-steps", "4", "--seeds", "0", "--batch", "4", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "ranking under totalDN:" in out and "ranking under activeDN:" in out
    assert "with the contract" in out


def test_bad_flags_get_a_message(capsys):
    assert fair.main(["--dense-steps", "0"]) == 2
    assert "error:" in capsys.readouterr().err
