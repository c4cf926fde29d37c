"""What the phase 41 pages say in words must hold in the outputs they show.

The outputs themselves are checked against fresh runs (`just docs-outputs --check`); these tests
check the sentences written around them. `out` reads an output (a fresh run of it, where the check
runs these tests on another machine's outputs); `saved` reads the page's own text, for a number a
sentence quotes, and `on_pages` asks that the quote be on the page in English and in Spanish.
"""

import math
import re

from minimoe.course.outputs_read import parse_fields, parse_table

from .claims import Pages, out, saved, step_lines

PHASE = Pages("phase-41-capacity-and-token-dropping")
LAB00 = "00-capacity-and-token-dropping"
page, says = PHASE.page, PHASE.says


def on_pages(name, *quotes):
    """Each quote (numbers, formulas) is on the English page and on its Spanish twin, where 2,048 is 2.048."""
    for q in quotes:
        says(name, q, re.sub(r"(?<=\d),(?=\d{3})", ".", q))


def span(cell) -> tuple[float, float]:
    """A cell of a min-max table: '5.9-10.2' -> (5.9, 10.2), 15 -> (15, 15)."""
    lo, _, hi = str(cell).partition("-")
    return float(lo), float(hi or lo)


def overlap(a, b) -> bool:
    return span(a)[0] <= span(b)[1] and span(b)[0] <= span(a)[1]


def mid(cell) -> float:
    return sum(span(cell)) / 2


def grid(name, text=None) -> dict:
    """(C, aux_alpha) -> row of the table of `just experiment capacity`."""
    return {(r["C"], r["aux_alpha"]): r for r in parse_table(text if text is not None else out(name), "C")}


def seeds(name, text=None) -> list[dict]:
    return [r for r in parse_table(text if text is not None else out(name), "seed") if isinstance(r["seed"], float)]


def claim(name, text=None) -> dict:
    """aux_alpha -> the per-seed rows of `just experiment capacity --aux-claim`."""
    parts = re.split(r"^aux_alpha=(\S+)$", text if text is not None else out(name), flags=re.M)
    return {float(a): seeds("", body) for a, body in zip(parts[1::2], parts[2::2])}


def steps(name, text=None) -> list[dict]:
    return step_lines(text if text is not None else out(name), name)


def health(name):
    return parse_table(out(name), "layer")


def summary(name, text=None):
    return parse_fields(text if text is not None else out(name), "mean_cv")


def val(name):
    return parse_fields(out(name), "val_loss")["val_loss"]


def held_out(name) -> int:
    return int(re.search(r"routing health on (\d+) held-out tokens", out(name)).group(1))


def message(name, test) -> str:
    """The assertion message of a failed test in a test output."""
    return next(ln for ln in out(name).splitlines() if ln.startswith("FAILED") and f"::{test}[" in ln)


# README: the lab's settings, the healthy ranges, what the toy does not reproduce


def test_readme_a_training_step_hands_out_2048_assignments_and_the_held_out_capacity_is_2048():
    """README: "T = 1,024 tokens, T·K = 2,048 assignments per step", each expert may take "2,048 of the
    8,192 assignments of the 4,096 held-out tokens"."""
    assert all(sum(s["counts"]) == 2048 for s in steps("41-00-train"))
    assert held_out("41-00-train") == 4096
    assert all(h["capacity"] == math.ceil(1.0 * 4096 * 2 / 4) == 2048 for h in health("41-00-train"))
    on_pages("README", "T = 1,024 tokens, T·K = 2,048", "ceil(1.0 · 2,048 / 4) = 512")
    says("README", "2,048 of the 8,192 assignments of the 4,096 held-out tokens",
         "2.048 de las 8.192 asignaciones de los 4.096 tokens reservados")


def test_readme_the_seed_table_is_the_lab_model_and_its_drop_is_the_mean_over_the_two_layers():
    """README: the ten-seed table is the lab model (seed 0 is lab 00's run), `drop%` averaged over the
    two MoE layers, `cv%` the load CV of what the router asked for."""
    row = seeds("41-00-seeds")[0]
    s, layers = summary("41-00-train"), health("41-00-train")
    assert len(layers) == 2 and abs(s["dropped"] - sum(h["drop%"] for h in layers) / 2) < 0.006
    assert row["val_loss"] == val("41-00-train") and row["drop"] == round(s["dropped"], 1)
    assert row["cv"] == s["mean_cv"]


def test_readme_healthy_seeds_stay_well_below_the_20_percent_detector():
    rows = seeds("41-00-seeds")
    assert len(rows) == 10 and max(r["drop"] for r in rows) < 20 / 1.5


def test_readme_the_phase_tests_pass_on_the_code_as_shipped():
    text = out("41-00-test")
    assert re.search(r"^\d+ passed$", text, re.M) and "failed" not in text


def test_readme_dropping_costs_less_than_the_seed_spread_and_only_c05_is_clearly_worse():
    """README: the val losses at C = 1 and dropless overlap over three seeds; a few % dropped costs less
    than the seed-to-seed spread; only C = 0.5, which drops half of every batch, is clearly worse. Lab 00,
    Step 4: "The val losses of C = 1 and dropless overlap"; What you can read now: "val losses that only
    C = 0.5 clearly moves"."""
    g, tight = grid("41-00-grid"), grid("41-00-position")[(0.5, 0.01)]
    healthy = [r["val_loss"] for r in seeds("41-00-seeds")]
    for a in (0.0, 0.01, 0.1):
        assert overlap(g[(1.0, a)]["val_loss"], g[(0.0, a)]["val_loss"]), a
        assert overlap(g[(1.25, a)]["val_loss"], g[(0.0, a)]["val_loss"]), a
        assert abs(mid(g[(1.0, a)]["val_loss"]) - mid(g[(0.0, a)]["val_loss"])) < max(healthy) - min(healthy)
    assert span(g[(1.0, 0.01)]["drop%"])[1] < 10  # "a few %"
    assert span(tight["val_loss"])[0] > max(span(g[(c, 0.01)]["val_loss"])[1] for c in (0.0, 1.0))
    assert all(abs(x - 50) < 1 for x in span(tight["train_drop%"]) + span(tight["drop%"]))


def test_readme_and_lab00_zeroed_aux_drops_less_than_its_dropless_collapse_predicts():
    """README: "An aux loss switched off (aux_alpha = 0) drops fewer tokens than its dropless collapse
    predicts"; lab 00, Step 5: "the measured drop is below the prediction on every seed"."""
    rows = claim("41-00-claim")[0.0]
    assert len(rows) == 10 and all(r["drop%"] < r["predicted%"] for r in rows)


def test_readme_and_lab00_the_probability_policy_does_not_beat_the_position_policy():
    """README: the probability policy does not beat the position policy at C = 0.5 or 1 on three seeds;
    lab 00, Step 6: "the two policies' val losses overlap"."""
    position, probability = grid("41-00-position"), grid("41-00-probability")
    assert "drop policy position" in out("41-00-position") and "drop policy probability" in out("41-00-probability")
    for cell in ((0.5, 0.01), (1.0, 0.01)):
        assert overlap(position[cell]["val_loss"], probability[cell]["val_loss"]), cell


# Lab 00


def test_lab00_help_shows_the_capacity_flags():
    text = out("41-00-help")
    assert "--capacity-factor" in text and "--drop-policy {position,probability}" in text


def test_lab00_step2_what_the_step_line_and_the_health_table_add():
    """Step 2: dropped=[ … ] per MoE layer, a share of the step's 2,048 assignments; capacity "2,048 for
    the 4,096 held-out tokens: ceil(1.0 · 4,096 · 2 / 4)"; kept_max never above the capacity; the summary
    ends with the mean dropped= over the layers; expert_counts show what the router asked for, before any
    dropping (an expert is asked for more than a training step's capacity, ceil(1.0 · 2,048 / 4))."""
    rows, layers = steps("41-00-train"), health("41-00-train")
    assert all(len(s["dropped"]) == len(layers) == 2 and sum(s["counts"]) == 2048 for s in rows)
    assert all(h["capacity"] == math.ceil(1.0 * held_out("41-00-train") * 2 / 4) for h in layers)
    assert all(h["kept_max"] <= h["capacity"] for h in layers)
    assert abs(summary("41-00-train")["dropped"] - sum(h["drop%"] for h in layers) / len(layers)) < 0.006
    assert max(max(s["counts"]) for s in rows) > math.ceil(1.0 * 2048 / 4)
    on_pages(LAB00, "ceil(1.0 · 4,096 · 2 / 4)")
    says(LAB00, "that step's 2,048 assignments", "2.048 asignaciones de ese paso")
    says(LAB00, "(2,048 for the 4,096 held-out tokens", "(2.048 para los 4.096 tokens reservados")


def test_lab00_step2_drops_come_in_bursts_where_the_load_is_uneven():
    """Step 2: "Drops come in bursts: when the router leans on one expert ..., that expert overflows; the
    aux loss pulls the load back and the drops fall": each layer's drop varies several-fold over the
    logged steps, and at most of them the layer whose load is most uneven (the one cv= names) drops more."""
    rows = steps("41-00-train")
    for layer in (0, 1):
        drops = [s["dropped"][layer] for s in rows]
        assert max(drops) >= 2 * min(drops), layer
    assert sum(s["dropped"][s["layer"]] >= max(s["dropped"]) for s in rows) > len(rows) / 2


def test_lab00_step3_the_dropless_run_has_no_capacity():
    """Step 3: the same model and seed without a capacity: no drops, no capacity columns, the same
    dense baseline."""
    text = out("41-00-dropless")
    assert "dropped" not in text and "capacity" not in parse_table(text, "layer")[0]
    baseline = lambda t: parse_fields(t, "val_loss")["dense_baseline"]  # noqa: E731
    assert baseline(text) == baseline(out("41-00-train"))


def test_lab00_step3_at_c05_at_least_half_is_dropped():
    """Step 3: at C = 0.5 the experts have room for "1,024 of the 2,048 assignments of a step, so at
    least half are dropped whatever the router does"."""
    rows = steps("41-00-tight")
    room = 4 * math.ceil(0.5 * sum(rows[-1]["counts"]) / 4)
    assert (room, sum(rows[-1]["counts"])) == (1024, 2048)
    assert all(d >= 50.0 for s in rows for d in s["dropped"])
    assert all(h["drop%"] >= 50.0 and h["capacity"] == math.ceil(0.5 * held_out("41-00-tight") * 2 / 4)
               for h in health("41-00-tight"))
    says(LAB00, "room for 1,024 of the 2,048 assignments of a step",
         "sitio para 1.024 de las 2.048 asignaciones de un paso")


def test_lab00_step4_c2_is_the_dropless_row_and_c125_overflows_only_without_aux():
    """Step 4: "C = 2 leaves room for everything: its row is the dropless row. At C = 1.25 only a router
    without the aux loss overflows"."""
    g = grid("41-00-grid")
    for a in (0.0, 0.01, 0.1):
        assert {k: v for k, v in g[(2.0, a)].items() if k != "C"} == {k: v for k, v in g[(0.0, a)].items() if k != "C"}
        assert g[(0.0, a)]["train_drop%"] == g[(0.0, a)]["drop%"] == 0
    assert span(g[(1.25, 0.0)]["train_drop%"])[1] > 0 and span(g[(1.25, 0.0)]["drop%"])[1] > 0
    for a in (0.01, 0.1):
        assert g[(1.25, a)]["train_drop%"] == g[(1.25, a)]["drop%"] == 0


def test_lab00_step4_at_c1_every_arm_drops_and_the_aux_loss_roughly_halves_the_drops():
    g = grid("41-00-grid")
    for a in (0.0, 0.01, 0.1):
        assert span(g[(1.0, a)]["train_drop%"])[0] > 0 and span(g[(1.0, a)]["drop%"])[0] > 0
    for col in ("train_drop%", "drop%"):
        assert 0.35 < mid(g[(1.0, 0.01)][col]) / mid(g[(1.0, 0.0)][col]) < 0.7, col
        assert mid(g[(1.0, 0.1)][col]) < mid(g[(1.0, 0.01)][col]), col


def test_lab00_step5_the_claim_is_run_at_k1_e4_c125_and_predicts_from_the_dropless_shares():
    """Step 5: phase 36's model (K = 1, E = 4) at C = 1.25; an expert asked for a share s drops s − C/E:
    no prediction where the busiest share is under C/E, and at least the busiest expert's excess where it
    is over (the prediction is a mean over the two MoE layers)."""
    text = out("41-00-claim")
    assert "K=1 E=4 C=1.25" in text.splitlines()[1]
    for rows in claim("41-00-claim").values():
        for r in rows:
            excess = r["max_load"] - 1.25 / 4
            if excess <= 0:
                assert r["predicted%"] == 0, r
            else:
                assert r["predicted%"] >= 100 * excess / 2 - 0.1, r


def test_lab00_step5_the_aux_loss_keeps_drops_small_and_without_it_the_collapse_costs_tokens():
    """Step 5: with the aux loss almost nothing is dropped; without it the dropless model's busiest expert
    takes well over a third of the tokens, under the capacity it loses many times more tokens than with
    the aux loss, and its val loss is worse than the dropless run's (on average, and on most seeds)."""
    c = claim("41-00-claim")
    aux, off = c[0.01], c[0.0]
    assert max(r["drop%"] for r in aux) < 5
    assert min(r["max_load"] for r in off) > 1 / 3 + 0.1
    mean = lambda rows, k: sum(r[k] for r in rows) / len(rows)  # noqa: E731
    assert mean(off, "drop%") > 5 * mean(aux, "drop%")
    assert mean(off, "val_capped") > mean(off, "val_free")
    assert sum(r["val_capped"] > r["val_free"] for r in off) > len(off) / 2


# Break 41-01: dropped tokens get their own input back


def test_41_01_training_looks_healthy_and_the_capacity_columns_are_the_same():
    """41-01: the drop counts look healthy; "the routing health, the capacity columns and the drops are of
    the same kind" as lab 00's healthy run."""
    broken, healthy = health("41-01-train"), health("41-00-train")
    assert [(h["capacity"], h["kept_max"]) for h in broken] == [(h["capacity"], h["kept_max"]) for h in healthy]
    drops = [r["drop"] for r in seeds("41-00-seeds")]
    assert min(drops) <= summary("41-01-train")["dropped"] <= max(drops)
    assert summary("41-01-train")["dead"] == 0 and summary("41-01-train")["max_load"] < 0.4


def test_41_01_val_loss_is_worse_on_every_seed_but_the_ranges_overlap():
    """41-01: on every seed the val loss is worse than the healthy one, but the two ranges overlap (and
    the Hard rules: "the val loss is worse on every seed")."""
    healthy = {r["seed"]: r["val_loss"] for r in seeds("41-00-seeds")}
    broken = {r["seed"]: r["val_loss"] for r in seeds("41-01-seeds")}
    assert len(broken) == 10 and all(broken[s] > healthy[s] for s in healthy)
    assert min(broken.values()) <= max(healthy.values())
    assert val("41-01-train") > val("41-00-train")
    says("breaks/41-01", "On every seed the val loss is worse than the healthy one",
         "En todas las semillas la val loss es peor que la sana")
    says("breaks/41-01", "the val loss is worse on every seed.", "la val loss es peor en todas las semillas.")


def test_41_01_the_pass_through_tests_measure_what_the_layer_adds():
    """41-01: both tests of test_pass_through.py fail; at C = 0.25 half of the test batch's tokens (32 of
    64) lose both assignments and get a vector as large as their input; with room for every assignment
    the layer differs from the dropless one by about the token itself."""
    text = out("41-01-test")
    assert "2 failed" in text
    lost = message("41-01-test", "test_a_token_every_expert_dropped_gets_nothing_from_the_layer")
    n, total, lo, hi, norm = (float(x) for x in re.search(
        r"(\d+) of (\d+) tokens had every assignment dropped.*norm ([\d.]+) to ([\d.]+) \(their input's norm: "
        r"([\d.]+)", lost).groups())
    assert 0.4 <= n / total <= 0.6 and 0.5 * norm < lo <= hi < 2 * norm
    room = message("41-01-test", "test_with_room_for_every_assignment_the_layer_gives_the_dropless_output")
    capped, dropless = (float(x) for x in re.search(r"output norms: ([\d.]+) vs ([\d.]+)", room).groups())
    assert "nothing dropped" in room and capped - dropless > 0.5 * norm
    assert re.search(r"\b32 of 64 tokens had every assignment dropped", saved("41-01-test"))
    says("breaks/41-01", "half of the test batch's tokens (32 of 64)",
         "la mitad de los tokens del lote del test (32 de 64)")


# Break 41-02: capacity from T/E instead of T·K/E


def test_41_02_half_of_every_layer_is_dropped_from_the_first_logged_step():
    """41-02: about half of every layer's assignments are dropped from the first logged step, the held-out
    capacity is 1,024 where C · T·K / E = 2,048, and the val loss is worse."""
    rows = steps("41-02-train")
    assert rows[0]["step"] == steps("41-00-train")[0]["step"]
    assert all(abs(d - 50) < 1 for s in rows for d in s["dropped"])
    assert [h["capacity"] for h in health("41-02-train")] == [h["capacity"] / 2 for h in health("41-00-train")]
    assert val("41-02-train") > val("41-00-train")
    assert [h["capacity"] for h in parse_table(saved("41-02-train"), "layer")] == [1024, 1024]
    on_pages("breaks/41-02", "C · T·K / E = 1.0 · 4,096 · 2 / 4 = 2,048")
    says("breaks/41-02", "the held-out capacity is 1,024", "la capacidad reservada es 1.024")


def test_41_02_every_seed_drops_half_where_healthy_seeds_stay_far_below_the_detector():
    """41-02: every seed drops half of its assignments, where the healthy ranges stay at a few %; the
    trained detector's 20% sits far above the healthy seeds and below the broken ones."""
    broken, healthy = seeds("41-02-seeds"), seeds("41-00-seeds")
    assert len(broken) == 10 and all(abs(r["drop"] - 50) < 1 and abs(r["train_drop"] - 50) < 1 for r in broken)
    assert max(max(r["drop"], r["train_drop"]) for r in healthy) < 20 / 1.5 < 20 < min(r["drop"] for r in broken)


def test_41_02_tests_a_balanced_batch_loses_half_and_full_experts_still_keep_their_capacity():
    """41-02: test_capacity's balanced batch sees half of its assignments dropped at C = 1, test_drop_rate
    half of the held-out ones; test_a_full_expert_keeps_exactly_its_capacity stays green."""
    text = out("41-02-test")
    assert re.search(r"^2 failed, \d+ passed$", text, re.M)
    assert "test_a_full_expert_keeps_exactly_its_capacity" not in text
    balanced = message("41-02-test", "test_balanced_routing_loses_no_assignment_at_capacity_factor_1")
    asked, cap, dropped, total = re.search(
        r"asked for \[(\d+),.*has capacity (\d+).*; (\d+) of (\d+) dropped", balanced).groups()
    assert int(cap) * 2 == int(asked) and int(dropped) * 2 == int(total)
    rate = message("41-02-test", "test_held_out_drop_rate_below_20_percent_at_capacity_factor_1")
    assert abs(float(re.search(r"AssertionError: ([\d.]+)% of the held-out", rate).group(1)) - 50) < 1


# Break 41-03: place in the expert's queue counted from 1


def test_41_03_kept_max_is_one_below_capacity_while_loss_and_drops_look_healthy():
    """41-03: the loss and the drop rate look healthy, of the same size as lab 00's; on every layer that
    drops, kept_max is one less than capacity."""
    layers = health("41-03-train")
    assert all(h["kept_max"] == h["capacity"] - 1 for h in layers if h["drop%"] > 0) and layers
    rows = seeds("41-00-seeds")
    assert min(r["val_loss"] for r in rows) <= val("41-03-train") <= max(r["val_loss"] for r in rows)
    assert min(r["drop"] for r in rows) <= summary("41-03-train")["dropped"] <= max(r["drop"] for r in rows)


def test_41_03_the_capacity_tests_count_one_assignment_short():
    """41-03: a balanced batch at C = 1 loses one assignment per expert (4 in the balanced batch); a full
    expert keeps one fewer than its capacity."""
    assert "2 failed" in out("41-03-test")
    balanced = message("41-03-test", "test_balanced_routing_loses_no_assignment_at_capacity_factor_1")
    cap = int(re.search(r"has capacity (\d+)", balanced).group(1))
    keeps = [int(k) for k in re.search(r"keeps \[([\d, ]+)\]", balanced).group(1).split(",")]
    assert keeps == [cap - 1] * 4 and re.search(r"; 4 of \d+ dropped", balanced)
    full = message("41-03-test", "test_a_full_expert_keeps_exactly_its_capacity")
    cap = int(re.search(r"capacity (\d+) per expert", full).group(1))
    asked, kept = (list(map(int, re.findall(r"\d+", g))) for g in re.search(
        r"asked for \[([\d, ]+)\] assignments keep \[([\d, ]+)\]", full).groups())
    assert any(a > cap for a in asked)
    assert all(k == (cap - 1 if a > cap else a) for a, k in zip(asked, kept))


def test_41_03_one_slot_in_512_is_less_than_the_seed_spread_of_the_drop_rate():
    """41-03: "One slot in 512 is 0.2% of a batch, less than the seed-to-seed spread of the drop rate"
    (512: a training step's capacity at C = 1, ceil(2,048 / 4))."""
    slot = 100 / math.ceil(sum(steps("41-00-train")[0]["counts"]) / 4)
    assert round(slot, 1) == 0.2
    drops = [r["train_drop"] for r in seeds("41-00-seeds")]
    assert max(drops) - min(drops) > slot
    says("breaks/41-03", "One slot in 512 is 0.2% of a batch", "Un hueco de 512 es el 0,2% de un lote")
