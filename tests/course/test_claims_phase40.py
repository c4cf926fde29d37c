"""What the phase 40 pages say in words must hold in the outputs they show.

The outputs themselves are checked against fresh runs (`just docs-outputs --check`); these tests
check the sentences written around them. `out` reads an output (a fresh run of it, where the check
runs these tests on another machine's outputs); `saved_output` the page's own text, for a number a
sentence quotes.
"""

import re

from minimoe.course.catalog import load_catalog
from minimoe.course.outputs_read import parse_table

from .claims import ROOT, out, saved


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


def audit(name, text=None) -> list[dict]:
    """The rows of `just experiment fair --audit`: its shape column has spaces, so read the gaps from the end."""
    text = text if text is not None else out(name)
    rows = []
    for line in text.splitlines():
        cells = line.split()
        if cells and cells[0].isdigit() and len(cells) > 3:
            rows.append({"seed": int(cells[0]), "active_gap": cells[-2], "budget_gap": cells[-1]})
    return rows


def test_healthy_audit_gaps_are_zero():
    rows = audit("40-00-audit")
    assert len(rows) == 10 and all(num(r["active_gap"]) == 0 and num(r["budget_gap"]) == 0 for r in rows)


def test_40_03_turns_both_detectors_red_and_its_page_names_both():
    """40-03 turns red the P_active detector and, through the activeDN budgets, the contract detector;
    the page names both test files."""
    text = out("40-03-test")
    assert "test_param_counts.py::test_p_active_matches_the_modules" in text
    assert "test_contracts.py::test_fair_budgets_follow_the_declared_contract" in text and "2 failed" in text
    assert all(num(r["active_gap"]) < 0 and num(r["budget_gap"]) > 0 for r in audit("40-03-audit"))
    for page in ("40-03.md", "40-03.es.md"):
        source = (ROOT / "labs/phase-40-fair-comparisons/breaks" / page).read_text(encoding="utf-8")
        assert "just test tests/phase40/test_param_counts.py tests/phase40/test_contracts.py" in source


def test_each_break_page_names_every_test_its_break_turns_red():
    """40-01 and 40-03 turn red the P_active detector, the contract detector and tests/core/test_params.py;
    40-02 the contract detector: each page (en, es) names every test file of its break's red: list, and
    the tests its output shows failing are in that list."""
    outputs = {"40-01": "40-01-test", "40-02": "40-02-test", "40-03": "40-03-test"}
    for bid, b in load_catalog(ROOT).items():
        if b.phase != 40:
            continue
        red = {t.split("::")[0] for t in b.red}
        failed = set(re.findall(r"^FAILED (\S+?)(?:\[\w+\])? ", out(outputs[bid]), re.M))
        assert failed and failed <= set(b.red), (bid, failed)
        for page in (b.lab, b.lab.replace(".md", ".es.md")):
            source = (ROOT / page).read_text(encoding="utf-8")
            missing = [f for f in red if f.removeprefix("tests/phase40/") not in source]
            assert not missing, f"{page} does not name {missing}, which its break turns red"


def test_no_block_ends_with_the_recipe_just_echoed():
    for name in ("40-01-params", "40-03-params"):
        assert not re.search(r"^(python3? -m |error: recipe )", out(name), re.M)


def test_break_pages_quote_their_margins():
    """40-01: smallest active_gap 144, budget_gap 12,428; 40-02: active_gap 0, budget_gap 782,953;
    40-03: 48 and 16,570."""
    def smallest(name, col):
        gaps = [abs(num(r[col])) for r in audit("", saved(name))]
        return min((g for g in gaps if g), default=0)
    assert (smallest("40-01-audit", "active_gap"), smallest("40-01-audit", "budget_gap")) == (144, 12428)
    assert (smallest("40-02-audit", "active_gap"), smallest("40-02-audit", "budget_gap")) == (0, 782953)
    assert (smallest("40-03-audit", "active_gap"), smallest("40-03-audit", "budget_gap")) == (48, 16570)
