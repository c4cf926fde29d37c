"""What the phase 38 pages say in words must hold in the outputs they show.

The outputs themselves are checked against fresh runs (`just docs-outputs --check`); these tests
check the sentences written around them. `out` reads an output (a fresh run of it, where the check
runs these tests on another machine's outputs); `saved` reads the page's own text, for a number a
sentence quotes.
"""

import re

from minimoe.course.outputs_read import parse_table

from .claims import out, saved

NUM = r"-?\d[\d,]*\.?\d*"


def gating(name, text=None) -> dict:
    """(mode, aux) -> one row of a `just experiment gating` balance table: each cell is a mean over
    seeds with its (min-max) range; `ranges` lists those ranges in column order."""
    rows = {}
    for line in (text if text is not None else out(name)).splitlines():
        m = re.match(rf"^(sparse-top1|sparse-top2|ste-top1|soft)\s+({NUM})\s+({NUM})\s+({NUM})\s", line)
        if not m or "[" in line:
            continue
        cells = re.findall(rf"({NUM}) \(({NUM})-({NUM})\)", line)  # val_loss, cv, max_load, e_eff, dead
        means = [float(c[0]) for c in cells]
        rows[(m.group(1), float(m.group(2)))] = {
            "p_total": int(m.group(3).replace(",", "")), "p_active": int(m.group(4).replace(",", "")),
            "val_loss": means[0], "cv": means[1], "max_load": means[2], "e_eff": means[3],
            "ranges": [(float(c[1]), float(c[2])) for c in cells]}
    return rows


def checks(name, text=None):
    text = text if text is not None else out(name)
    return {r["seed"]: r for r in parse_table(text, "seed") if isinstance(r["seed"], float)}


def test_lab00_aux_zero_collapses_top1_modes_but_not_top2_or_soft():
    g = gating("38-00-gating")
    for mode in ("sparse-top1", "ste-top1"):
        assert g[(mode, 0.0)]["max_load"] > 0.5 and g[(mode, 0.0)]["e_eff"] < 3
    for mode in ("sparse-top2", "soft"):
        assert g[(mode, 0.0)]["max_load"] < 0.4 and g[(mode, 0.0)]["cv"] < g[("sparse-top1", 0.0)]["cv"] / 2
    for mode in ("sparse-top1", "sparse-top2", "ste-top1", "soft"):
        for aux in (0.01, 0.1):
            assert g[(mode, aux)]["max_load"] < 0.4 and g[(mode, aux)]["e_eff"] >= 3.7


def test_lab00_soft_touches_every_expert_and_has_the_lowest_loss():
    g = gating("38-00-gating")
    soft = g[("soft", 0.01)]
    assert soft["p_active"] == soft["p_total"] > g[("sparse-top1", 0.01)]["p_active"]
    assert soft["val_loss"] < min(g[(m, 0.01)]["val_loss"] for m in ("sparse-top1", "sparse-top2", "ste-top1"))


def test_lab00_the_notes_collapse_claim_does_not_reproduce_with_two_experts():
    g = gating("38-00-gating-e2")
    lo, hi = g[("sparse-top1", 0.1)]["ranges"][2]  # max_load range over seeds
    assert hi < 0.6  # close to 50/50 on every seed
    lo0, hi0 = g[("sparse-top1", 0.0)]["ranges"][2]
    assert g[("sparse-top1", 0.0)]["max_load"] > 0.75 and hi0 < 0.98  # lopsided, not 98/2 on every seed
    soft_lo, soft_hi = g[("soft", 0.0)]["ranges"][2]
    assert soft_hi < hi0 and g[("soft", 0.0)]["max_load"] < g[("sparse-top1", 0.0)]["max_load"]  # far less lopsided
    assert soft_hi > 0.55  # "but not even"
    assert all(g[(m, 0.1)]["ranges"][2][1] < 0.6 for m in ("sparse-top1", "ste-top1", "soft"))  # aux 0.1: ~50/50


def test_lab00_ranges_the_pages_quote():
    """Lab 00, Step 3 and the README: max_load 0.51-0.53 (sparse top-1, aux 0.1), 0.83-0.97 (aux 0), and
    soft gating without aux 0.52-0.67 ("up to two thirds of the gate mass")."""
    g = gating("", saved("38-00-gating-e2"))
    assert g[("sparse-top1", 0.1)]["ranges"][2] == (0.51, 0.53)
    assert g[("sparse-top1", 0.0)]["ranges"][2] == (0.83, 0.97)
    assert g[("soft", 0.0)]["ranges"][2] == (0.52, 0.67)


def test_lab00_selective_moe_stores_fewer_parameters():
    full, sel = gating("38-00-gating"), gating("38-00-selective")
    D, F, E = 48, 16, 4
    assert full[("sparse-top1", 0.01)]["p_total"] - sel[("sparse-top1", 0.01)]["p_total"] == 3 * 3 * D * F + D * E


def test_lab00_only_soft_gating_compiles():
    lines = {tuple(ln.split()[:3]): ln for ln in out("38-00-compile").splitlines() if ln.split()[:1] and
             ln.split()[0] in ("sparse-top1", "sparse-top2", "ste-top1", "soft")}
    assert lines[("soft", "True", "yes")].split()[3:5] == ["1", "0"]
    for mode in ("sparse-top1", "sparse-top2", "ste-top1"):
        for fullgraph in ("True", "False"):  # the page: both stop at grouped_mm's bf16-only compile-time check
            assert (mode, fullgraph, "no") in lines and "BF16" in lines[(mode, fullgraph, "no")]


def test_lab00_compression_keeps_the_router_and_layer0_routing():
    for name in ("38-00-ternary", "38-00-prune"):
        text = out(name)
        assert "kept L0 router, L1 router" in text and "changed: L0 0.0%" in text


def test_38_01_and_38_02_change_the_router_and_layer0_routing():
    for name in ("38-01-compress", "38-02-compress"):
        text = out(name)
        assert "changed L0 router" in text and "kept nothing" in text
        assert float(re.search(r"changed: L0 (" + NUM + ")%", text).group(1)) > 1.0
    ratio = lambda name, label: float(re.search(rf"^{label}\s+{NUM}\s+({NUM})x", out(name), re.M).group(1))  # noqa: E731
    assert ratio("38-01-compress", "ternary") > ratio("39-00-compress", "ternary")  # "somewhat worse"


def test_38_03_counts_add_up_to_tokens_not_assignments_and_losses_are_identical():
    def lines(name):
        return [ln for ln in out(name).splitlines() if ln.startswith("step=")]

    for healthy, broken in zip(lines("38-03-pristine"), lines("38-03-train")):
        counts = lambda ln: sum(int(c) for c in ln.split("[")[1].split("]")[0].split())  # noqa: E731
        assert counts(healthy) == 2048 and counts(broken) == 1024
        assert healthy.split("cv=")[0] == broken.split("cv=")[0]  # same step, main and aux


def test_38_03_gating_collapse_looks_milder():
    healthy, broken = gating("38-00-gating")[("sparse-top1", 0.0)], gating("38-03-gating")[("sparse-top1", 0.0)]
    assert broken["val_loss"] == healthy["val_loss"]
    assert broken["cv"] < healthy["cv"] and broken["max_load"] < healthy["max_load"]
    assert broken["e_eff"] > healthy["e_eff"]


def test_break_pages_quote_their_margins():
    """38-01: tern_L0 "from 0.033 to 0.119"; 38-02: prune_L0 "from 0.027 to 0.058" over the ten seeds."""
    on1, on2 = checks("", saved("38-checks-01")), checks("", saved("38-checks-02"))
    assert (round(min(r["tern_L0"] for r in on1.values()), 3), round(max(r["tern_L0"] for r in on1.values()), 3)) \
        == (0.033, 0.119)
    assert (round(min(r["prune_L0"] for r in on2.values()), 3), round(max(r["prune_L0"] for r in on2.values()), 3)) \
        == (0.027, 0.058)


def test_readme_margins_separate_at_the_thresholds():
    off, on1, on2 = checks("38-checks-pristine"), checks("38-checks-01"), checks("38-checks-02")
    assert max(r["tern_L0"] for r in off.values()) <= 0.005 < min(r["tern_L0"] for r in on1.values())
    assert max(r["prune_L0"] for r in off.values()) <= 0.005 < min(r["prune_L0"] for r in on2.values())
    loads_off, loads_on = checks("38-load-pristine"), checks("38-load-03")
    assert all(r["load_err"] == 0 and r["forced"] == 1.0 and r["dead"] == 3 and r["sum_k2"] == 2 * 512
               for r in loads_off.values())
    assert all(r["load_err"] > 0 and r["forced"] < 1.0 for r in loads_on.values())
