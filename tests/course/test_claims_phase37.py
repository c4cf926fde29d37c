"""What the phase 37 pages say in words must hold in the outputs they show.

The outputs themselves are checked against fresh runs (tests/course/test_outputs.py); these tests
check the sentences written around them. `dashboard`, `seeds` and `body` read an output (a fresh run of
it, where `just docs-outputs --check` runs these tests on another machine's outputs); `quoted` reads the
page's own saved text, for a number a sentence quotes.
"""

import re
from pathlib import Path

from minimoe.course.outputs_read import parse_table, read_output, saved_output

from .claims import Pages, out, saved

ROOT = Path(__file__).resolve().parents[2]
ROW_RE = re.compile(r"^\s*(?P<name>\S.*?)\s+(?P<tok>[\d,]+)\s+(?P<v0>[\d.]+)->(?P<v1>[\d.]+)\s+"
                    r"(?P<c0>\d+)->(?P<c1>\d+)\s+"
                    r"(?P<cvr>[\d.]+)\s+(?P<ml>[\d.]+)\s+(?P<ent>[\d.]+)\s+(?P<e0>\d+)->(?P<e1>\d+)\s+"
                    r"(?P<d0>\d+)->(?P<d1>\d+)\s+(?P<col>\S+)$")


def dashboard(name: str, text: str | None = None) -> dict[str, dict]:
    """The super4096 table of an output, by row name (E=64, no balancing, ...)."""
    rows = {}
    for line in (text if text is not None else read_output(ROOT, name)).splitlines():
        m = ROW_RE.match(line)
        if m:
            d = m.groupdict()
            name = d.pop("name")
            rows[name] = {k: (v if k == "col" else float(v.replace(",", ""))) for k, v in d.items()}
    assert rows, f"no dashboard rows in {name}"
    return rows


def seeds(name: str, text: str | None = None) -> list[dict]:
    text = text if text is not None else read_output(ROOT, name)
    return [r for r in parse_table(text, "seed") if isinstance(r["seed"], float)]


def quoted(name: str):
    """The page's own text of an output: what a sentence quotes."""
    return saved_output(ROOT, name)


def body(name: str) -> list[str]:
    return read_output(ROOT, name).splitlines()[1:]  # without the command line


def test_ladder_loss_improves_while_routing_shrinks():
    rows = dashboard("37-00-ladder")
    order = ["E=64", "E=256", "E=1024", "E=4096"]
    losses = [rows[e]["v1"] for e in order]
    assert losses == sorted(losses, reverse=True)  # README: the loss gets worse as E falls
    dead = [rows[e]["d1"] for e in order]
    assert dead == sorted(dead) and rows["E=64"]["d1"] <= 5 and rows["E=4096"]["d1"] > 7000  # "almost none"
    share = [rows[e]["e1"] / int(e[2:]) for e in order]
    assert share == sorted(share, reverse=True)
    cv = [rows[e]["c1"] for e in order]
    assert cv == sorted(cv)  # Step 5: lowering E lowers the CV
    for r in rows.values():
        assert r["col"] == "never/never" and r["v1"] < r["v0"] and r["ml"] < 0.07


def test_ladder_numbers_the_pages_quote():
    """README: "1.767 at E = 64, 1.537 at E = 4096"; lab 00, Step 2: "(1 of 128)", "about 200 of 4096",
    Step 3: dead "to about 7,200", Step 5: CV "from about 540% to about 70%"."""
    rows = dashboard("", quoted("37-00-ladder"))
    assert (rows["E=64"]["v1"], rows["E=4096"]["v1"]) == (1.767, 1.537)
    assert rows["E=64"]["d1"] == 1 and abs(rows["E=4096"]["e1"] - 200) <= 10 and abs(rows["E=4096"]["d1"] - 7200) <= 100
    assert abs(rows["E=4096"]["c1"] - 540) <= 15 and abs(rows["E=64"]["c1"] - 70) <= 5


def test_imbalance_is_not_sampling_and_is_there_at_init():
    r = dashboard("37-00-ladder")["E=4096"]
    assert r["c1"] > 10 * r["cvr"] and r["c0"] > 10 * r["cvr"]
    assert r["d0"] > 6000 and r["d1"] > r["d0"] and r["e1"] < r["e0"]


def test_falsifier_arms_as_described():
    for name in ("37-00-falsify", "37-00-falsify-4096"):
        rows = dashboard(name)
        none, small, aux, bias = (rows[k] for k in ("no balancing", "aux 1e-4", "aux 0.01", "aux-free bias 0.01"))
        assert none["d1"] > none["d0"] and none["e1"] < none["e0"] and none["v1"] < none["v0"]
        assert aux["e1"] >= 2 * none["e1"]  # "more than twice as high"
        assert aux["v1"] == min(r["v1"] for r in rows.values())
        assert bias["d1"] == min(r["d1"] for r in rows.values())
        assert bias["v1"] == max(r["v1"] for r in rows.values())
        assert all(r["col"] == "never/never" and r["ml"] < 0.07 for r in rows.values())
        # aux 1e-4 "helps a little at both E, and 0.01 a lot"
        assert small["e1"] > none["e1"] and small["c1"] < none["c1"]
        assert aux["e1"] - none["e1"] > 2 * (small["e1"] - none["e1"])
    # Step 5: without balancing, lowering E lowers the CV too
    assert dashboard("37-00-falsify-4096")["no balancing"]["c1"] > dashboard("37-00-falsify")["no balancing"]["c1"]


def test_falsifier_numbers_the_pages_quote():
    """Lab 00, Step 4: E_eff "from 59 to 70 at E = 1024 and from 65 to 88 at E = 4096", the mean CV "from
    420% to 402% and from 850% to 722%"; Step 5: "850% at E = 4096 and 420% at E = 1024"."""
    at1024, at4096 = dashboard("", quoted("37-00-falsify")), dashboard("", quoted("37-00-falsify-4096"))
    assert (at1024["no balancing"]["e1"], at1024["aux 1e-4"]["e1"]) == (59, 70)
    assert (at4096["no balancing"]["e1"], at4096["aux 1e-4"]["e1"]) == (65, 88)
    assert (at1024["no balancing"]["c1"], at1024["aux 1e-4"]["c1"]) == (420, 402)
    assert (at4096["no balancing"]["c1"], at4096["aux 1e-4"]["c1"]) == (850, 722)


def test_small_preset_marker_fires_only_at_e16():
    rows = dashboard("37-00-small")
    assert rows["E=16"]["col"] != "never/never" and rows["E=16"]["e1"] >= 15
    assert rows["E=64"]["col"] == rows["E=256"]["col"] == "never/never"


def test_detector_ranges_separate_at_150_dead():
    pristine, flipped, unused = (seeds(n) for n in ("37-margins-pristine", "37-margins-01", "37-margins-02"))
    assert len(pristine) == len(flipped) == len(unused) == 10
    assert max(r["dead"] for r in pristine) < 150 < min(r["dead"] for r in unused + flipped)
    assert min(r["dead"] for r in flipped) > max(r["dead"] for r in unused)
    assert max(r["max_load"] for r in flipped) < 0.9 / 7  # 37-01: "no expert takes a seventh of them"


def test_detector_margins_the_pages_quote():
    """README: "150 sits 85 above the largest healthy count"; 37-01: the smallest count is 407, 257 below;
    37-02: 328, 178 below; 37-01: the busiest expert takes "at most 0.11" over the ten seeds."""
    healthy = max(r["dead"] for r in seeds("", quoted("37-margins-pristine")))
    flipped, unused = (seeds("", quoted(n)) for n in ("37-margins-01", "37-margins-02"))
    assert 150 - healthy == 85
    assert (min(r["dead"] for r in flipped), min(r["dead"] for r in flipped) - 150) == (407, 257)
    assert (min(r["dead"] for r in unused), min(r["dead"] for r in unused) - 150) == (328, 178)
    assert max(r["max_load"] for r in flipped) <= 0.11


def test_bias_never_used_is_identical_to_no_bias():
    assert body("37-02-train") == body("37-00-nobias")


def test_flipped_sign_is_worse_than_no_balancing():
    def summary(name):
        line = [ln for ln in body(name) if ln.startswith("mean_cv=")][0]
        return {k: float(v.rstrip("%")) for k, v in re.findall(r"(\w+)=([\d.]+%?)", line)}

    flipped, nobias, bias = summary("37-01-train"), summary("37-00-nobias"), summary("37-00-bias")
    assert flipped["dead"] > nobias["dead"] > bias["dead"]
    assert flipped["E_eff"] < nobias["E_eff"] < bias["E_eff"]


# ---------------------------------------------------------------- break 37-03: the raw load error

RAW = "breaks/37-03"  # its page, English and Spanish (tests/course/claims.py's Pages)
says = Pages("phase-37-extreme-sparsity").says


STEP_RE = re.compile(r"^step=\s*(\d+)\s+main=[\d.]+\s+aux=[\d.]+\s+cv=\s*(\d+)% L(\d)\s+expert_counts=\[([\d\s]+)")


def step_lines(text: str, name: str) -> list[dict]:
    """The step lines of a run (its counts: the 8 busiest experts of the worst layer, busiest first)."""
    rows = [{"step": int(m[1]), "cv": float(m[2]), "layer": int(m[3]), "counts": [int(c) for c in m[4].split()]}
            for m in map(STEP_RE.match, text.splitlines()) if m]
    assert rows, f"no step lines in {name}"
    return rows


def _summary(text: str) -> dict[str, float]:
    lines = text.splitlines()
    fields = {k: float(v.rstrip("%")) for k, v in
              re.findall(r"(\w+)=([\d.]+%?)", [ln for ln in lines if ln.startswith("mean_cv=")][0])}
    fields["val_loss"] = float([ln for ln in lines if ln.startswith("val_loss=")][0].split("=")[1])
    fields["collapse"] = [ln for ln in lines if ln.startswith("first step with max_load")][0].split(": ", 1)[1]
    return fields


def test_raw_error_update_balances_between_none_and_the_sign():
    """37-03, Step 4: dead and E_eff land between the healthy run and the unbalanced one, "much nearer the
    unbalanced one"; the step lines' cv% is above both at step 25 and step 100; the collapse marker fires
    in training, never in lab 00's runs; the val loss ends higher than both."""
    raw, nobias, bias = (_summary(out(n)) for n in ("37-03-train", "37-00-nobias", "37-00-bias"))
    assert bias["dead"] < raw["dead"] < nobias["dead"] and nobias["dead"] - raw["dead"] < raw["dead"] - bias["dead"]
    assert nobias["E_eff"] < raw["E_eff"] < bias["E_eff"]
    assert raw["E_eff"] - nobias["E_eff"] < bias["E_eff"] - raw["E_eff"]
    assert raw["val_loss"] > max(nobias["val_loss"], bias["val_loss"])
    assert "never" not in raw["collapse"] and nobias["collapse"] == bias["collapse"] == "L0: never, L1: never"
    lines = {n: {r["step"]: r for r in step_lines(out(n), n)} for n in ("37-03-train", "37-00-nobias", "37-00-bias")}
    for step in (25, 100):
        assert lines["37-03-train"][step]["cv"] > max(lines[n][step]["cv"] for n in ("37-00-nobias", "37-00-bias"))


def test_raw_error_numbers_the_pages_quote():
    """37-03, Step 4: the runs' numbers it quotes, and the size of one step of the bias: 28 assignments per
    expert on average, 994 to the busiest (0.139 of 7,168, above 0.129), 966 over, a step of 9.66."""
    raw, nobias, bias = (_summary(saved(n)) for n in ("37-03-train", "37-00-nobias", "37-00-bias"))
    assert (bias["dead"], bias["E_eff"], nobias["dead"], nobias["E_eff"]) == (43, 136.0, 343, 51.9)
    assert (raw["val_loss"], bias["val_loss"], nobias["val_loss"]) == (2.220, 2.135, 2.110)
    assert (raw["collapse"], raw["max_load"]) == ("L0: 22, L1: 17", 0.063)
    steps = {n: {r["step"]: r for r in step_lines(saved(n), n)} for n in ("37-03-train", "37-00-nobias", "37-00-bias")}
    assert [steps[n][25]["cv"] for n in ("37-03-train", "37-00-bias", "37-00-nobias")] == [433, 180, 221]
    assert [steps[n][100]["cv"] for n in ("37-03-train", "37-00-bias", "37-00-nobias")] == [252, 145, 229]
    busiest = steps["37-03-train"][25]
    assignments, mean = 16 * 64 * 7, 16 * 64 * 7 / 256
    assert (busiest["layer"], busiest["counts"][0], assignments, mean) == (1, 994, 7168, 28)
    assert f"{busiest['counts'][0] / assignments:.3f}" == "0.139" and busiest["counts"][0] / assignments >= 0.9 / 7
    over = busiest["counts"][0] - mean
    assert (over, f"{0.01 * over:.2f}", f"{0.01 * mean:.2f}") == (966, "9.66", "0.28")
    for q in ("`dead=43`, `E_eff=136.0`", "`dead=343`, `E_eff=51.9`", "433%", "180%", "221%", "252%", "145%",
              "229%", "`L0: 22, L1: 17`", "0.063", "`val_loss=2.220`", "2.135 y 2.110", "1,024", "28 ", "994",
              "0.139", "7,168", "0.129", "966", "9.66", "+0.28"):
        says(RAW, q.replace(" y ", " and "), q)


def test_raw_error_unit_detector_as_the_page_tells_it():
    """37-03, Step 4: the skewed-load test goes red with its load more uneven than before (CV 57% -> 137%), the
    biases beyond the +-2.00 that 200 sign steps can reach (-7.89..+6.57), four of 16 experts with no token;
    the selection test stays green."""
    text = out("37-03-test")
    assert text.rstrip().endswith("2 failed, 1 passed") and "test_selection_follows_the_bias" not in text
    m = re.search(r"load CV (\d+)% before the 200 bias updates, (\d+)% after \(loads \[([\d, ]+)\]\); "
                  r"bias range (-[\d.]+)\.\.\+([\d.]+)", text)
    assert m and int(m[2]) > int(m[1]) and max(-float(m[4]), float(m[5])) > 200 * 0.01
    q = re.search(r"load CV (\d+)% before the 200 bias updates, (\d+)% after \(loads \[([\d, ]+)\]\); "
                  r"bias range (-[\d.]+)\.\.\+([\d.]+)", saved("37-03-test"))
    loads = [int(x) for x in q[3].split(",")]
    assert (q[1], q[2], q[4], q[5], len(loads), loads.count(0)) == ("57", "137", "-7.89", "6.57", 16, 4)
    says(RAW, "-7.89 to +6.57", "-7.89 a +6.57")
    says(RAW, "57% before, 137% after", "57% antes, del 137% después")
    says(RAW, "four of the 16 experts", "cuatro de los 16 expertos")
    says(RAW, "200 x 0.01 = 2.00")


def test_raw_error_ten_seeds_sit_between_the_healthy_and_the_unbalanced_range():
    """37-03: every seed has fewer dead experts than without balancing (37-02's seeds), more than 150, and a
    higher val loss than the healthy run of the same seed."""
    raw, unused, pristine = (seeds(n) for n in ("37-margins-03", "37-margins-02", "37-margins-pristine"))
    assert len(raw) == 10 and max(r["dead"] for r in pristine) < 150 < min(r["dead"] for r in raw)
    assert max(r["dead"] for r in raw) < min(r["dead"] for r in unused)
    healthy = {r["seed"]: r["val_loss"] for r in pristine}
    assert all(r["val_loss"] > healthy[r["seed"]] for r in raw)


def test_raw_error_margins_the_pages_quote():
    """37-03: "between 254 and 276", "328 to 346", "32 to 65"; the smallest count 254, 104 below the bar, the
    narrowest margin of the three breaks (257 and 178)."""
    raw, unused, pristine = (seeds("", quoted(n)) for n in ("37-margins-03", "37-margins-02", "37-margins-pristine"))
    dead = {n: (min(r["dead"] for r in t), max(r["dead"] for r in t))
            for n, t in (("raw", raw), ("unused", unused), ("pristine", pristine))}
    assert dead == {"raw": (254, 276), "unused": (328, 346), "pristine": (32, 65)}
    flipped = min(r["dead"] for r in seeds("", quoted("37-margins-01")))
    assert dead["raw"][0] - 150 == 104 < dead["unused"][0] - 150 < flipped - 150
    says(RAW, "between 254 and 276", "entre 254 y 276")
    says(RAW, "328 to 346", "de 328 a 346")
    says(RAW, "32 to 65", "32 a 65")
    says(RAW, "the smallest count is 254", "el menor recuento es 254")
    says(RAW, "85 above the largest healthy count and 104 below",
         "85 por encima del mayor recuento sano y 104 por debajo")
