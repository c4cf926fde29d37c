"""`just bench-gap`: G5's gap split into the dispatch and the grouped matmuls, on G5's cells only, with
the profiler naming the operations; the recorded split on the performance page, and the page's claims
about it checked against the recording. No timing is asserted: speed claims live in the command."""

import json
from pathlib import Path

import pytest

from minimoe.course import site_bench
from minimoe.course.catalog import CourseError
from minimoe.perf import gap

PERFORMANCE = Path(__file__).resolve().parents[2] / "docs" / "performance"


def test_only_the_cells_goal_five_covers_are_run():
    assert gap.g5_cells([4096, 1024], [8, 512, 4096], [1, 7]) == [
        (4096, 8, 1), (4096, 512, 1), (4096, 8, 7), (4096, 512, 7), (1024, 8, 1), (1024, 8, 7), (1024, 512, 7)]


@pytest.mark.parametrize("chain, part", [
    (["autograd::engine::evaluate_function: GroupedMmBackward0", "GroupedMmBackward0", "aten::_grouped_mm",
      "aten::mm"], "expert matmuls"),
    (["_Combine", "aten::mul"], "gather and combine"),  # the combine's own multiply is no activation
    (["autograd::engine::evaluate_function: _CombineBackward", "_CombineBackward", "aten::index_select"],
     "gather and combine"),
    (["aten::mul"], "expert activations"),
    (["autograd::engine::evaluate_function: MulBackward0", "MulBackward0", "aten::mul"], "expert activations"),
    (["aten::sort"], "sort and counts"),
    (["aten::matmul", "aten::bmm"], "expert matmuls"),
    (["aten::something_new"], "other"),
])
def test_an_operation_goes_under_the_part_that_called_it(chain, part):
    assert gap.part_of(chain) == part


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gap")
    assert gap.main(["--tokens", "256", "--experts", "8", "--top-k", "2", "--repeats", "3", "--profile-calls", "1",
                     "--out", str(out)]) == 0
    return json.loads((out / "gap.json").read_text())


def test_a_tiny_run_writes_the_split_and_names_the_matmuls(tiny_run):
    (cell,) = tiny_run["cells"]
    assert (cell["tokens"], cell["experts"], cell["top_k"]) == (256, 8, 2)
    assert set(cell["columns"]) == set(gap.COLUMNS) and all(len(c["times_ms"]) == 3 for c in cell["columns"].values())
    for a, b in gap.FACTORS:
        med, low, high = cell["ratios"][f"{a}/{b}"]
        assert low <= med <= high
    ragged, balanced = cell["profiles"]["ragged"], cell["profiles"]["balanced"]
    # the floor: one batched matmul per weight forward, two per weight backward; the grouped matmul: as many, per expert
    assert balanced["matmul"]["aten::bmm"]["calls"] == 9 and "aten::mm" not in balanced["matmul"]
    assert ragged["matmul"]["aten::mm"]["calls"] == 9 * 8
    assert ragged["parts_ms"]["gather and combine"] > 0 and balanced["parts_ms"]["gather and combine"] == 0
    assert ragged["parts_ms"]["sort and counts"] > 0 and balanced["parts_ms"]["sort and counts"] == 0
    assert ragged["parts_ms"]["expert matmuls"] > 0 and ragged["parts_ms"]["expert activations"] > 0
    assert set(tiny_run["summary"]) == {f"{a}/{b}" for a, b in gap.FACTORS}


def test_the_split_renders_in_both_languages_and_is_recorded(tiny_run, tmp_path):
    for lang, word in (("en", "gathers and combine"), ("es", "reunir y combinar")):
        page = site_bench.gap_markdown(tiny_run, lang)
        assert word in page and "| 256, 8, 2 | " in page and "`mm` 72 x" in page and "`bmm` 9 x" in page
    (tmp_path / "runs/bench").mkdir(parents=True)
    (tmp_path / "docs/performance").mkdir(parents=True)
    with pytest.raises(CourseError, match="run `just bench-gap` first"):
        site_bench.record_gap(tmp_path)
    (tmp_path / "runs/bench/gap.json").write_text("{not json")
    with pytest.raises(CourseError, match="not valid JSON"):
        site_bench.record_gap(tmp_path)
    (tmp_path / "runs/bench/gap.json").write_text(json.dumps({"cells": []}))
    with pytest.raises(CourseError, match="format of this minimoe.perf.gap"):
        site_bench.record_gap(tmp_path)
    (tmp_path / "runs/bench/gap.json").write_text(json.dumps(tiny_run))
    site_bench.record_gap(tmp_path, echo=lambda _: None)
    assert json.loads((tmp_path / "docs/performance/gap.json").read_text()) == tiny_run
    text = site_bench.fill_bench("<!-- bench-gap -->", tmp_path, "en")
    assert text.startswith("Recorded from `just bench-gap`")


def test_the_page_shows_every_part_of_the_profile_once():
    shown = [part for parts in site_bench.GAP_COLUMNS.values() for part in parts] + list(site_bench.GAP_REST)
    assert sorted(shown) == sorted([p for p, _ in gap.PARTS] + [gap.OTHER])  # three columns and the rest: six parts


def test_nothing_recorded_is_said_with_the_command(tmp_path):
    for lang in ("en", "es"):
        assert "just bench-gap" in site_bench.fill_bench("<!-- bench-gap -->", tmp_path, lang)


def test_cells_goal_five_does_not_cover_are_refused_with_why(capsys):
    assert gap.main(["--tokens", "64", "--experts", "512", "--top-k", "1", "--out", ""]) == 2
    assert "T*K/E >= 8" in capsys.readouterr().out


def test_performance_page_claims_about_g5s_gap_hold_in_the_recorded_split():
    """docs/performance says: each factor's whole interval is over 1.1 in several cells; at E = 8 the grouped
    matmuls' factor is 1.4 at most and the dispatch's about 1.1 to 1.3 in every cell; at E = 512 the grouped
    matmuls' factor is 1.5 or more and the dispatch's about 1.1 or less; the ragged layer runs 9*E aten::mm a
    call (576 at E = 64, 4,608 at E = 512) where the floor runs 9 aten::bmm. (Two runs on the recording
    machine: dispatch at E = 8 1.11-1.29 and 1.11-1.23; at E = 512 at most 1.10 and 1.08; grouped matmuls at
    E = 512 at least 1.60 both times.)"""
    data = json.loads((PERFORMANCE / "gap.json").read_text())
    cells = data["cells"]
    covered = gap.g5_cells([4096, 1024], [8, 64, 512, 4096], [1, 2, 7])
    assert {(c["tokens"], c["experts"], c["top_k"]) for c in cells} == set(covered)
    assert data["summary"]["ragged/experts"]["over_1.1"] >= 3 and data["summary"]["experts/balanced"]["over_1.1"] >= 3
    for c in cells:
        dispatch, matmuls = c["ratios"]["ragged/experts"][0], c["ratios"]["experts/balanced"][0]
        if c["experts"] == 8:
            assert 1.05 <= dispatch <= 1.35 and matmuls <= 1.4, c
        if c["experts"] == 512:
            assert matmuls >= 1.5 and dispatch <= 1.12, c
        assert c["profiles"]["ragged"]["matmul"]["aten::mm"]["calls"] == 9 * c["experts"]
        assert set(c["profiles"]["balanced"]["matmul"]) == {"aten::bmm"}
        assert c["profiles"]["balanced"]["matmul"]["aten::bmm"]["calls"] == 9
    for page, words in (("index.md", ("576 at E = 64, 4,608 at E = 512", "every E = 8 cell", "1.4× at most",
                                      "1.5× the floor or more", "10% to 30%")),
                        ("index.es.md", ("576 con E = 64, 4608 con E = 512", "celdas con E = 8", "como mucho, 1.4×",
                                         "1.5× el suelo o más", "10 % a un 30 %"))):
        text = " ".join((PERFORMANCE / page).read_text().split())  # (the words, whatever the line breaks)
        assert "<!-- bench-gap -->" in text and all(w in text for w in words), page
