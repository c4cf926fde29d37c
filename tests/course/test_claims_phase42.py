"""What the phase 42 pages say in words must hold in the outputs they show.

The outputs themselves are checked against fresh runs (`just docs-outputs --check`); these tests
check the sentences written around them. `out` reads an output (a fresh run of it, where the check
runs these tests on another machine's outputs); `saved` reads the page's own text, for a number a
sentence quotes, and `says` asks that the quote be on the page in English and in Spanish.
"""

import re

from minimoe.course.outputs_read import parse_fields, parse_table

from .claims import Pages, out, saved, step_lines

PHASE = Pages("phase-42-expert-parallelism")
LAB00 = "00-expert-parallelism"
TOLERANCE = 1e-5  # the tests' tolerance, as the pages quote it
page, says = PHASE.page, PHASE.says


def num(cell) -> float:
    """A table cell as a number: '311,205' -> 311205."""
    return float(str(cell).replace(",", ""))


def equivalence(name, text=None) -> dict:
    """ranks -> row of the table of `just experiment expert_parallel` ('-': no such step)."""
    return {int(r["ranks"]): r for r in parse_table(text if text is not None else out(name), "ranks")}


def steps(name, text=None) -> dict:
    """step -> (main, aux, counts) of a run's step lines."""
    rows = step_lines(text if text is not None else out(name), name)
    return {r["step"]: (r["main"], r["aux"], r["counts"]) for r in rows}


def val(name):
    return parse_fields(out(name), "val_loss")["val_loss"]


def summary(name):
    return parse_fields(out(name), "mean_cv")


def results(name) -> str:
    """The last line of a test output: '4 failed, 1 passed'."""
    return out(name).strip().splitlines()[-1]


def message(name, test) -> str:
    """The assertion message of a failed test in a test output."""
    return next(ln for ln in out(name).splitlines() if ln.startswith("FAILED") and f"::{test}[" in ln)


def largest(line) -> float:
    return float(re.search(r"largest difference ([\d.e+-]+)", line).group(1))


def from_step(line) -> int:
    """The first step a failed test names ('from step 2', 'at steps [2, 3, ...]')."""
    return int(re.search(r"(?:from step |at steps \[)(\d+)", line).group(1))


BREAK_TESTS = ("42-01-test", "42-02-test", "42-03-test", "42-04-test")


# README


def test_readme_the_equivalence_run_compares_1_2_and_4_ranks_over_300_steps():
    assert "300 steps" in out("42-00-equivalence").splitlines()[1]
    assert sorted(equivalence("42-00-equivalence")) == [1, 2, 4]


def test_readme_the_tolerance_is_about_twenty_times_the_rounding_and_far_below_wrong_computations():
    """README: the tests' tolerance, 1e-5, is about twenty times the largest rounding difference the
    healthy runs show (4.77e-07, with 4 ranks), and far below what any wrong computation gives (every
    failed equivalence test of the breaks is ten times the tolerance or more away)."""
    rounding = [r for r in equivalence("42-00-equivalence").values() if r["drift_from"] == "-"]
    worst = max(max(r["d_main"], r["d_aux"], r["d_val"]) for r in rounding)
    assert 15 < TOLERANCE / worst < 30
    assert f"{equivalence('', saved('42-00-equivalence'))[4]['d_main']:.2e}" == "4.77e-07"
    says("README", "about twenty times the largest rounding difference the healthy runs show "
                   "(4.77e-07, with 4 ranks)",
         "unas veinte veces la mayor diferencia de redondeo que muestran las ejecuciones sanas "
         "(4.77e-07, con 4 rangos)")
    gaps = [largest(ln) for name in BREAK_TESTS for ln in out(name).splitlines() if "largest difference" in ln]
    gaps += [float(x) for name in BREAK_TESTS for x in re.findall(r"differ by up to ([\d.e+-]+)", out(name))]
    assert len(gaps) >= 10 and min(gaps) >= 10 * TOLERANCE


def _rounding_or_a_late_flip(n: int, row: dict) -> str:
    """Every N of the equivalence run either stays float rounding (differences below 1e-6, the counts equal
    at every logged step) or parts late, after a near-tie top-k flip, and still lands close: which N meets a
    flip, and when, depends on the machine's float arithmetic. Returns "rounding" or "flip"."""
    assert row["router_spread"] == 0, f"{n} ranks: the router replicas differ"
    if row["drift_from"] == "-":
        assert max(row["d_main"], row["d_aux"], row["d_val"]) < 1e-6 and row["counts_off"] == 0, row
        return "rounding"
    assert row["drift_from"] > 10 * 20 and row["drift_from"] <= row["first_off"], row  # long after the tests' 20 steps
    assert row["d_main"] > TOLERANCE and row["d_val"] < 1e-2, row
    return "flip"


def test_readme_the_2_rank_run_parts_after_step_214_long_after_the_tests_20_steps():
    """README: the 2-rank run's larger differences are not rounding: they start at step 214, and the
    tests' 20-step runs end long before. On any machine: every N stays rounding or parts after step 200."""
    for n, row in equivalence("42-00-equivalence").items():
        _rounding_or_a_late_flip(n, row)
    quoted = equivalence("", saved("42-00-equivalence"))
    assert quoted[2]["drift_from"] == 214 and _rounding_or_a_late_flip(2, quoted[2]) == "flip"
    says("README", "from step 214", "desde el paso 214")
    says("README", "on another machine the flip may come in another run, or in none",
         "en otra máquina el cambio puede llegar en otra ejecución, o en ninguna")
    tested = message("42-01-test", "test_two_rank_main_loss_follows_one_process")
    assert re.search(r"over (\d+) steps", tested).group(1) == "20"


def test_readme_the_phase_tests_pass_on_the_code_as_shipped():
    assert re.fullmatch(r"\d+ passed", results("42-00-test")) and "FAILED" not in out("42-00-test")


# Lab 00


def test_lab00_help_shows_the_expert_parallel_flag_and_a_bad_launch_is_one_error_line():
    assert "--expert-parallel TRAIN.EXPERT_PARALLEL" in out("42-00-help")
    lines = out("42-00-ep-bad").strip().splitlines()[1:]  # without the command line
    assert len(lines) == 1 and lines[0].startswith("error: --expert-parallel 3: must divide --experts 8")


def test_lab00_step2_two_ranks_print_the_one_process_step_lines_up_to_step_200():
    """Step 2: up to step 200 the 2-rank step lines are the one-process run's, losses, aux values and
    expert counts to the last printed digit."""
    one, two = steps("42-00-one"), steps("42-00-ep2")
    assert sorted(one) == sorted(two)
    assert [s for s in one if s <= 200] == [50, 100, 150, 200]
    assert all(one[s] == two[s] for s in one if s <= 200)


def test_lab00_step2_at_step_250_they_have_parted_a_little():
    """Step 2: at step 250 the main loss and the aux value are one apart in the last digit, most of the
    counts off by a handful (the page's runs). On any machine: at step 250 the two runs are equal or a
    handful apart."""
    (main1, aux1, c1), (main2, aux2, c2) = steps("42-00-one")[250], steps("42-00-ep2")[250]
    assert abs(float(main1) - float(main2)) < 0.01 and max(abs(a - b) for a, b in zip(c1, c2)) <= 10
    (main1, aux1, c1), (main2, aux2, c2) = (steps("", saved(n))[250] for n in ("42-00-one", "42-00-ep2"))
    assert round(abs(float(main1) - float(main2)), 3) == 0.001 and round(abs(float(aux1) - float(aux2)), 3) == 0.001
    off = [abs(a - b) for a, b in zip(c1, c2) if a != b]
    assert len(off) > len(c1) / 2 and max(off) <= 10
    says(LAB00, "(the main loss and the aux value one apart in the last digit, most of the counts off by a handful)",
         "(la pérdida principal y el valor aux difieren en una unidad de la última cifra, y la mayoría de los "
         "recuentos en unas pocas unidades)")


def test_lab00_step2_each_rank_holds_half_the_experts_and_half_the_batch():
    """Step 2: "Each rank held 4 of the 8 experts of each layer and saw 8 of the 16 sequences of each
    batch"; Step 4: one process averages over all 1,024 tokens of a step, a rank over its 512."""
    m = re.search(r"expert parallel: (\d+) ranks, (\d+) experts and (\d+) sequences each", out("42-00-ep2"))
    ranks, experts, seqs = (int(g) for g in m.groups())
    batch, context = (int(x) for x in re.search(r"batch=(\d+)x(\d+)", out("42-00-equivalence")).groups())
    assert len(steps("42-00-ep2")[50][2]) == ranks * experts == 8 and ranks * seqs == batch == 16
    assert (batch * context, seqs * context) == (1024, 512)
    says(LAB00, "Each rank held 4 of the 8 experts of each layer and saw 8 of the 16 sequences",
         "Cada rango tenía 4 de los 8 expertos de cada capa y vio 8 de las 16 secuencias")
    says(LAB00, "over all 1,024 tokens of a step. Rank r averages over its 512",
         "sobre los 1.024 tokens de un paso. El rango r promedia sobre sus 512")


def test_lab00_step3_four_ranks_agree_to_rounding_and_their_counts_at_every_logged_step():
    """Step 3: with 4 ranks the differences are float rounding, at most 4.77e-07 over the 300 steps, and
    the counts equal at every logged step (counts_off 0), in the page's run."""
    quoted = equivalence("", saved("42-00-equivalence"))[4]
    assert _rounding_or_a_late_flip(4, quoted) == "rounding" and quoted["first_off"] == "-"
    assert f"{quoted['d_main']:.2e}" == "4.77e-07" and max(quoted["d_aux"], quoted["d_val"]) <= quoted["d_main"]
    says(LAB00, "at most 4.77e-07 over the 300 steps", "como mucho 4.77e-07 en los 300 pasos")


def test_lab00_step3_two_ranks_drift_from_a_top_k_flip_and_arrive_at_the_same_place():
    """Step 3: with 2 ranks the main losses first differ by more than 1e-5 at step 214 (drift_from), the
    first logged step whose counts differ is 216 (first_off), the main losses end up to 1.55e-02 apart,
    the val losses 3.99e-04: they arrive at the same place (the page's run). On any machine every N stays
    rounding or parts late and lands close, and the two runs of Step 2 end at val losses 0.01 apart."""
    for n, row in equivalence("42-00-equivalence").items():
        _rounding_or_a_late_flip(n, row)
    assert abs(val("42-00-one") - val("42-00-ep2")) < 0.01
    quoted = equivalence("", saved("42-00-equivalence"))[2]
    assert _rounding_or_a_late_flip(2, quoted) == "flip" and 200 < quoted["drift_from"] <= 250
    assert quoted["d_val"] < quoted["d_main"] / 10
    assert (quoted["drift_from"], quoted["first_off"]) == (214, 216)
    assert (f"{quoted['d_main']:.2e}", f"{quoted['d_val']:.2e}") == ("1.55e-02", "3.99e-04")
    for en, es in (("until step 214 (`drift_from`", "hasta el paso 214 (`drift_from`"),
                   ("the first logged step whose counts differ is 216, `first_off`",
                    "el primer paso registrado en que difieren los recuentos es el 216, `first_off`"),
                   ("up to 1.55e-02 apart in main loss", "hasta 1.55e-02 de diferencia en la pérdida principal"),
                   ("the val losses differ by 3.99e-04", "val loss difieren en 3.99e-04"),
                   ("the 2-rank run stayed rounding and the 4-rank run met the flip",
                    "la ejecución con 2 rangos se quedó en redondeo y la de 4 rangos encontró el cambio")):
        says(LAB00, en, es)


def test_lab00_step3_the_largest_main_loss_difference_line_is_the_table_s():
    rows = equivalence("42-00-equivalence")
    line = re.search(r"largest main-loss difference from one process: ([\d.e+-]+)", out("42-00-equivalence"))
    assert float(line.group(1)) == max(r["d_main"] for r in rows.values())


def test_lab00_step3_the_ranks_router_replicas_agree_exactly_for_every_n():
    assert all(r["router_spread"] == 0 for r in equivalence("42-00-equivalence").values())


def test_lab00_step5_what_one_rank_sends_the_other_receives_and_the_bytes_are_four_passes_of_d48():
    """Step 5: each row is D = 48 floats of 4 bytes, sent out and its output sent back, and again in the
    backward pass; what one rank sends, the other receives."""
    rows = parse_table(out("42-00-ep2"), "rank")
    assert len(rows) == 2
    assert num(rows[0]["sent"]) == num(rows[1]["received"]) and num(rows[1]["sent"]) == num(rows[0]["received"])
    for r in rows:
        assert num(r["bytes_sent"]) == 48 * 4 * 2 * (num(r["sent"]) + num(r["received"]))
    says(LAB00, "D = 48 floats of 4 bytes", "D = 48 floats de 4 bytes")


# The breaks: each against lab 00's one-process run


def test_42_01_losses_differ_from_the_first_logged_step_end_higher_and_routing_looks_healthy():
    """42-01: the losses differ from the first logged step and end higher; the routing counts are a
    healthy router's."""
    one, broken = steps("42-00-one"), steps("42-01-train")
    first = min(one)
    assert one[first][0] != broken[first][0]
    assert float(broken[max(one)][0]) > float(one[max(one)][0]) and val("42-01-train") > val("42-00-one")
    s, healthy = summary("42-01-train"), summary("42-00-one")
    assert s["dead"] == 0 and s["max_load"] <= healthy["max_load"] and s["E_eff"] >= healthy["E_eff"]


def test_42_01_most_of_rank_0s_tokens_get_other_logits_and_the_second_layer_counts_follow():
    """42-01: most of rank 0's tokens differ (343 of its 512); the losses follow, and so do the routing
    counts of the second layer (the first layer's counts at step 1 are the one-process ones). Margins:
    hundreds of a rank's 512 tokens differ, the largest by more than 1, the losses by more than 1e-2."""
    assert results("42-01-test") == "4 failed, 1 passed"
    logits = message("42-01-test", "test_each_rank_gives_its_tokens_the_one_process_output")
    rank, wrong, total = (int(g) for g in re.search(r"rank (\d+): (\d+) of its (\d+) tokens", logits).groups())
    assert rank == 0 and 100 <= wrong and wrong > total / 2 and largest(logits) > 1
    says("breaks/42-01",
         "hundreds of a rank's 512 tokens differ, the largest by more than 1, and the losses by more than 1e-2",
         "cientos de los 512 tokens de un rango difieren, el que más en más de 1, y las pérdidas en más de 1e-2")
    for test in ("test_two_rank_main_loss_follows_one_process", "test_two_rank_aux_loss_follows_one_process"):
        assert from_step(message("42-01-test", test)) == 1 and largest(message("42-01-test", test)) > 1e-2
    counts = message("42-01-test", "test_expert_counts_follow_one_process")
    first = re.search(r"step 1 layer 1 (\[[\d, ]+\]) vs (\[[\d, ]+\])", counts)  # the first layer that differs
    assert from_step(counts) == 1 and first and first.group(1) != first.group(2)
    assert re.search(r"rank 0: 343 of its 512 tokens", saved("42-01-test"))
    says("breaks/42-01", "rank 0's tokens differ (343 of its 512", "los tokens del rango 0 difieren (343 de sus 512")


def test_42_02_the_model_learns_close_to_one_process_but_not_equal():
    """42-02: the model still learns, and the losses stay close to one process's, but they are not equal."""
    one, broken = steps("42-00-one"), steps("42-02-train")
    mains = [float(broken[s][0]) for s in sorted(broken)]
    assert mains[-1] < mains[0] and val("42-02-train") < parse_fields(out("42-02-train"), "val_loss")["dense_baseline"]
    gaps = [abs(float(broken[s][0]) - float(one[s][0])) for s in one]
    assert max(gaps) < 0.1 and any(gaps)


def test_42_02_step_1_agrees_and_above_all_the_routers_drift_apart():
    """42-02: step 1 is the same; the logits at init agree (their test passes); the losses, the counts and
    above all the router weights do not: after 20 steps the copies differ by up to 6.96e-02, nearly the
    size of the largest router weight (0.074). Margins: the routers differ by more than 10⁻², the losses
    by more than 10⁻³; on the healthy code the routers are equal (router_spread 0)."""
    text = out("42-02-test")
    assert results("42-02-test") == "4 failed, 1 passed"
    assert "test_each_rank_gives_its_tokens_the_one_process_output" not in text
    losses = [message("42-02-test", t) for t in ("test_two_rank_main_loss_follows_one_process",
                                                  "test_two_rank_aux_loss_follows_one_process")]
    counts = message("42-02-test", "test_expert_counts_follow_one_process")
    assert all(from_step(m) == 2 for m in losses + [counts]) and all(largest(m) > 1e-3 for m in losses)
    router = message("42-02-test", "test_router_weights_agree_across_ranks")
    spread, weight = (float(x) for x in re.search(
        r"after 20 steps .* differ by up to ([\d.e+-]+) \(largest router weight ([\d.]+)\)", router).groups())
    assert spread > 1e-2 and spread > weight / 2
    loss = re.search(r"2 ranks ([\d.]+) vs one process ([\d.]+)", losses[0]).groups()
    assert spread / weight > 10 * largest(losses[0]) / float(loss[1])  # "above all": relative to their size
    assert "differ by up to 6.96e-02 (largest router weight 0.074)" in saved("42-02-test")
    says("breaks/42-02", "differ by up to 6.96e-02, nearly the size of the largest router weight (0.074)",
         "difieren hasta en 6.96e-02, casi tanto como el mayor peso del router (0.074)")
    assert all(r["router_spread"] == 0 for r in equivalence("42-00-equivalence").values())


def test_42_03_losses_are_not_one_process_s_from_the_first_logged_step_and_end_higher():
    one, broken = steps("42-00-one"), steps("42-03-train")
    first, last = min(one), max(one)
    assert one[first][0] != broken[first][0] and float(broken[last][0]) > float(one[last][0])
    assert float(broken[last][0]) < float(broken[first][0])  # it still learns
    assert val("42-03-train") > val("42-00-one")


def test_42_03_every_token_differs_and_the_losses_by_the_margins_quoted():
    """42-03 margins: every token of a rank differs, the largest by more than 1, the main loss by more
    than 10⁻¹ and the aux loss by more than 10⁻²."""
    assert results("42-03-test") == "4 failed, 1 passed"
    logits = message("42-03-test", "test_each_rank_gives_its_tokens_the_one_process_output")
    wrong, total = (int(g) for g in re.search(r"(\d+) of its (\d+) tokens", logits).groups())
    assert wrong == total and largest(logits) > 1
    assert largest(message("42-03-test", "test_two_rank_main_loss_follows_one_process")) > 1e-1
    assert largest(message("42-03-test", "test_two_rank_aux_loss_follows_one_process")) > 1e-2
    says("breaks/42-03",
         "the largest by more than 1, the main loss by more than 10⁻¹ and the aux loss by more than 10⁻²",
         "el que más en más de 1, la pérdida principal en más de 10⁻¹ y la aux en más de 10⁻²")


def test_42_04_the_differences_are_small_and_only_an_exact_comparison_sees_them():
    """42-04: the differences from one process are small, the training nearly the same; the aux values
    leave one process's."""
    one, broken = steps("42-00-one"), steps("42-04-train")
    assert max(abs(float(broken[s][0]) - float(one[s][0])) for s in one) < 0.05
    assert abs(val("42-04-train") - val("42-00-one")) < 0.05
    assert any(broken[s][1] != one[s][1] for s in one)


def test_42_04_the_aux_loss_differs_first_and_the_main_loss_and_counts_follow():
    """42-04: the aux loss differs from one process from the first step; the main loss and the counts
    follow a few steps later. Margins: the aux values differ by more than 10⁻⁴, ten times the tolerance."""
    assert results("42-04-test") == "3 failed, 2 passed"
    aux = message("42-04-test", "test_two_rank_aux_loss_follows_one_process")
    main = message("42-04-test", "test_two_rank_main_loss_follows_one_process")
    counts = message("42-04-test", "test_expert_counts_follow_one_process")
    assert from_step(aux) == 1 and 1 < from_step(main) <= 10 and 1 < from_step(counts) <= 10
    assert largest(aux) > 1e-4 >= 10 * TOLERANCE
