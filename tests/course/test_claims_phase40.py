"""What the phase 40 pages say in words must hold in the saved outputs they show.

The outputs themselves are checked against fresh runs (`just docs-outputs --check`); these tests
check the sentences written around them.
"""

import re
from pathlib import Path

from minimoe.course.outputs_read import parse_table, read_output

ROOT = Path(__file__).resolve().parents[2]


def out(name):
    return read_output(ROOT, name)


def num(cell) -> float:
    """A table cell as a number: '2,704,991' -> 2704991."""
    return float(str(cell).replace(",", ""))


def fair(name) -> dict:
    """(model, contract) -> row of the table of `just experiment fair`."""
    return {(r["model"], r["contract"]): r for r in parse_table(out(name), "model")}


def ranking(name, contract) -> list[str]:
    line = next(ln for ln in out(name).splitlines() if ln.startswith(f"ranking under {contract}:"))
    return re.findall(r"([\w-]+) \(\d", line.split(":", 1)[1])


def test_the_ranking_does_not_change_with_the_contract():
    for name in ("40-00-fair", "40-00-fair-wide"):
        assert ranking(name, "totalDN") == ranking(name, "activeDN"), name
        assert "the ranking does not change with the contract" in out(name)
    assert ranking("40-00-fair", "totalDN") == ["moe-64", "moe-16", "dense"]


def test_every_gap_is_larger_than_its_spread():
    rows = fair("40-00-fair")
    for contract in ("totalDN", "activeDN"):
        order = [rows[(m, contract)] for m in ranking("40-00-fair", contract)]
        for better, worse in zip(order, order[1:]):
            gap = worse["val_loss"] - better["val_loss"]
            assert gap > max(better["spread"], worse["spread"]), (contract, better["model"], worse["model"])


def test_the_moe64_dense_gap_grows_several_times_under_total_dn():
    rows = fair("40-00-fair")
    gap = {c: rows[("dense", c)]["val_loss"] - rows[("moe-64", c)]["val_loss"] for c in ("totalDN", "activeDN")}
    assert gap["totalDN"] > 3 * gap["activeDN"] > 0


def test_dense_wide_beats_moe64_under_both_contracts_and_the_budgets_quoted():
    rows = fair("40-00-fair-wide")
    for c in ("totalDN", "activeDN"):
        assert rows[("dense-wide", c)]["val_loss"] < rows[("moe-64", c)]["val_loss"]
    assert rows[("moe-64", "totalDN")]["steps"] == 2643  # "the MoE-64's totalDN budget is 2,643 steps"
    tokens = num(rows[("dense-wide", "activeDN")]["tokens"]) / num(rows[("moe-64", "activeDN")]["tokens"])
    assert round(tokens, 1) == 7.6  # "about 7.6 times the tokens of the MoE-64"


def test_the_router_share_of_moe64_p_active():
    text = out("40-00-params-moe64")
    router = num(re.search(r"^router\s+([\d,]+)", text, re.M).group(1))
    active = num(re.search(r"^P_active\s+([\d,]+)", text, re.M).group(1))
    assert round(100 * router / active) == 14  # "14% of the MoE-64's"
