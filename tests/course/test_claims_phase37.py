"""What the phase 37 pages say in words must hold in the saved outputs they show.

The outputs themselves are checked against fresh runs (tests/course/test_outputs.py); these tests
check the sentences written around them.
"""

import re
from pathlib import Path

from minimoe.course.outputs_read import parse_table, read_output

ROOT = Path(__file__).resolve().parents[2]
ROW_RE = re.compile(r"^\s*(?P<name>\S.*?)\s+(?P<tok>[\d,]+)\s+(?P<v0>[\d.]+)->(?P<v1>[\d.]+)\s+"
                    r"(?P<c0>\d+)->(?P<c1>\d+)\s+"
                    r"(?P<cvr>[\d.]+)\s+(?P<ml>[\d.]+)\s+(?P<ent>[\d.]+)\s+(?P<e0>\d+)->(?P<e1>\d+)\s+"
                    r"(?P<d0>\d+)->(?P<d1>\d+)\s+(?P<col>\S+)$")


def dashboard(name: str) -> dict[str, dict]:
    """The super4096 table of a saved output, by row name (E=64, no balancing, ...)."""
    rows = {}
    for line in read_output(ROOT, name).splitlines():
        m = ROW_RE.match(line)
        if m:
            d = m.groupdict()
            name = d.pop("name")
            rows[name] = {k: (v if k == "col" else float(v.replace(",", ""))) for k, v in d.items()}
    assert rows, f"no dashboard rows in {name}"
    return rows


def seeds(name: str) -> list[dict]:
    return [r for r in parse_table(read_output(ROOT, name), "seed") if isinstance(r["seed"], float)]


def body(name: str) -> list[str]:
    return read_output(ROOT, name).splitlines()[1:]  # without the command line


def test_ladder_loss_improves_while_routing_shrinks():
    rows = dashboard("37-00-ladder")
    order = ["E=64", "E=256", "E=1024", "E=4096"]
    assert rows["E=4096"]["v1"] < rows["E=64"]["v1"]  # loss better at E=4096
    dead = [rows[e]["d1"] for e in order]
    assert dead == sorted(dead) and rows["E=64"]["d1"] <= 2 and rows["E=4096"]["d1"] > 7000  # "almost none"
    share = [rows[e]["e1"] / int(e[2:]) for e in order]
    assert share == sorted(share, reverse=True)
    for r in rows.values():
        assert r["col"] == "never/never" and r["v1"] < r["v0"] and r["ml"] < 0.07


def test_imbalance_is_not_sampling_and_is_there_at_init():
    r = dashboard("37-00-ladder")["E=4096"]
    assert r["c1"] > 10 * r["cvr"] and r["c0"] > 10 * r["cvr"]
    assert r["d0"] > 6000 and r["d1"] > r["d0"] and r["e1"] < r["e0"]


def test_falsifier_arms_as_described():
    for name in ("37-00-falsify", "37-00-falsify-4096"):
        rows = dashboard(name)
        none, small, aux, bias = (rows[k] for k in ("no balancing", "aux 1e-4", "aux 0.01", "aux-free bias 0.01"))
        assert none["d1"] > none["d0"] and none["e1"] < none["e0"] and none["v1"] < none["v0"]
        assert aux["e1"] >= 2 * none["e1"]
        assert aux["v1"] == min(r["v1"] for r in rows.values())
        assert bias["d1"] == min(r["d1"] for r in rows.values())
        assert bias["v1"] == max(r["v1"] for r in rows.values())
        assert all(r["col"] == "never/never" and r["ml"] < 0.07 for r in rows.values())
    big = dashboard("37-00-falsify-4096")
    assert big["aux 1e-4"]["e1"] > big["no balancing"]["e1"]


def test_small_preset_marker_fires_only_at_e16():
    rows = dashboard("37-00-small")
    assert rows["E=16"]["col"] != "never/never" and rows["E=16"]["e1"] >= 15
    assert rows["E=64"]["col"] == rows["E=256"]["col"] == "never/never"


def test_detector_ranges_separate_at_150_dead():
    pristine, flipped, unused = (seeds(n) for n in ("37-margins-pristine", "37-margins-01", "37-margins-02"))
    assert len(pristine) == len(flipped) == len(unused) == 10
    assert max(r["dead"] for r in pristine) < 150 < min(r["dead"] for r in unused + flipped)
    assert min(r["dead"] for r in flipped) > max(r["dead"] for r in unused)
    healthy, broken = max(r["dead"] for r in pristine), min(r["dead"] for r in unused + flipped)
    assert (150 - healthy, broken - 150) == (94, 178)  # README: "150 sits 94 above ... and 178 below"


def test_bias_never_used_is_identical_to_no_bias():
    assert body("37-02-train") == body("37-00-nobias")


def test_flipped_sign_is_worse_than_no_balancing():
    def summary(name):
        line = [ln for ln in body(name) if ln.startswith("mean_cv=")][0]
        return {k: float(v.rstrip("%")) for k, v in re.findall(r"(\w+)=([\d.]+%?)", line)}

    flipped, nobias, bias = summary("37-01-train"), summary("37-00-nobias"), summary("37-00-bias")
    assert flipped["dead"] > nobias["dead"] > bias["dead"]
    assert flipped["E_eff"] < nobias["E_eff"] < bias["E_eff"]
