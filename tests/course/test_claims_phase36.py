"""What the phase 36 pages say in words must hold in the saved outputs they show.

The outputs themselves are checked against fresh runs (tests/course/test_outputs.py); these tests
check the sentences written around them.
"""

from pathlib import Path

from minimoe.course.outputs_read import parse_fields, parse_table, read_output

ROOT = Path(__file__).resolve().parents[2]


def out(name):
    return read_output(ROOT, name)


def health(name):
    return parse_table(out(name), "layer")


def seeds(name):
    return {r["seed"]: r for r in parse_table(out(name), "seed")}


def test_lab00_moe_beats_dense_baseline():
    f = parse_fields(out("36-00-train"), "val_loss")
    assert f["val_loss"] < f["dense_baseline"]


def test_lab00_selective_marker_is_an_early_transient():
    text = out("36-00-selective")
    first = int(text.split("L0: ")[1].split()[0])
    assert first < 50 and health("36-00-selective")[0]["max_load"] < 0.5


def test_36_01_loss_and_collapse_as_described():
    broken, healthy = parse_fields(out("36-01-train"), "val_loss"), parse_fields(out("36-00-train"), "val_loss")
    assert healthy["val_loss"] < broken["val_loss"] < broken["dense_baseline"]
    assert parse_fields(out("36-01-train"), "step=500")["aux"] > 1.5  # climbs from ~1 towards E
    cvs = sorted(h["cv%"] for h in health("36-01-train"))
    assert cvs[-1] > 1.5 * cvs[0]  # one layer collapses hard, the other is merely uneven


def test_36_01_ranges_separate_at_the_thresholds():
    off, on = seeds("36-00-seeds"), seeds("36-01-seeds")
    assert max(r["max_load"] for r in off.values()) < 0.5 < min(r["max_load"] for r in on.values())
    assert max(r["mean_cv"] for r in off.values()) < 50 < min(r["mean_cv"] for r in on.values())
    assert not all(r["max_load"] >= 0.95 for r in on.values())  # "not on every seed 95%"


def test_36_01_e16_rarely_passes_half():
    rows = seeds("36-01-e16").values()
    assert sum(r["max_load"] > 0.5 for r in rows) <= len(rows) // 2


def test_readme_nearby_settings_have_thinner_margins():
    lab_min = min(r["max_load"] for r in seeds("36-01-seeds").values())
    for name in ("36-design-batch32", "36-design-std002"):
        assert min(r["max_load"] for r in seeds(name).values()) < lab_min


def test_36_02_weights_are_all_one_and_router_stays_uncertain():
    for h in health("36-02-train"):
        assert h["w_sum"] == h["w_min"] == h["w_max"] == 1.0
        assert h["tok_ent"] > 1.3  # log 4 = 1.386
    f = parse_fields(out("36-02-train"), "val_loss")
    assert f["val_loss"] > parse_fields(out("36-00-train"), "val_loss")["val_loss"]
    assert f["val_loss"] > f["dense_baseline"]


def test_36_03_weights_vanish_and_loss_is_worse():
    assert all(h["w_sum"] < 0.05 for h in health("36-03-train"))
    assert all(h["w_sum"] == 1.0 for h in health("36-03-pristine"))
    assert parse_fields(out("36-03-train"), "val_loss")["val_loss"] > parse_fields(
        out("36-03-pristine"), "val_loss")["val_loss"]


def test_36_04_weights_go_negative():
    assert min(h["w_min"] for h in health("36-04-train")) < 0
