"""Lab outputs cannot go stale: pages show the saved outputs, and a fresh run reproduces them: exactly on
the machine that recorded them, within each output's stated tolerance on any other."""

import re
from pathlib import Path

import pytest

from minimoe.course import numerics, outputs, site_phases
from minimoe.course.catalog import load_catalog
from minimoe.course.outputs_compare import EXACT, Rule, compare, parse_tolerance

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_block_matches_its_saved_output():
    problems = outputs.check(ROOT, fresh=False)
    assert not problems, "\n".join(problems)


def test_every_output_block_has_a_spec_and_every_spec_is_shown():
    names = {s.name for s in outputs.load_specs(ROOT)}
    shown = {n for page in outputs.lab_pages(ROOT) for n in outputs.page_blocks(page)}
    assert shown <= names, f"blocks without an outputs.yaml entry: {sorted(shown - names)}"
    shown |= {s.name for ph in site_phases.phases(ROOT, load_catalog(ROOT))
              for s in site_phases.hunt_outputs(ROOT, ph).values()}  # the blind-hunt pages show these
    assert names <= shown, f"outputs.yaml entries no page shows: {sorted(names - shown)}"


def test_every_command_of_a_blind_hunt_page_has_its_healthy_output():
    """A hunt page asks to compare with the healthy model: each command it lists (but a test run, whose healthy
    result is that its tests pass) has a recorded output with no break on, shown on the page."""
    missing = [f"phase {ph.number}: just {c}" for ph in site_phases.phases(ROOT, load_catalog(ROOT))
               for c in ph.syllabus["hunt"]["run"]
               if not c.startswith("test ") and c not in site_phases.hunt_outputs(ROOT, ph)]
    assert not missing, "hunt commands with no healthy output in outputs.yaml:\n" + "\n".join(missing)


def test_exact_comparison_allows_no_difference():
    assert compare("a=1.000 b=[ 10 20 ]", "a=1.000 b=[ 10 20 ]", EXACT).problems == []
    assert compare("a=1.000", "a=1.001", EXACT).problems


def test_a_tolerance_allows_numbers_to_move_but_not_the_words_around_them():
    tol = parse_tolerance({"rel": 0.2, "abs": 0.5}, "test")
    found = compare("a=1.000 b=[ 10 20 ]", "a=1.010 b=[  9 20 ]", tol)  # spacing may change with a number's width
    # 1.000 vs 1.010 is within the absolute slack; 10 vs 9 needs the relative part (1 <= 0.2 * 10 + 0.5)
    assert found.problems == [] and found.numbers == 3 and round(found.worst, 3) == 0.1
    assert compare("a=10.0", "a=14.0", tol).problems  # 4 > 0.2 * 14 + 0.5
    assert compare("a=1.000", "b=1.000", tol).problems
    assert compare("a=1\nb=2", "a=1", tol).problems  # a missing line


def test_lines_matching_a_pattern_get_their_own_tolerance():
    tol = parse_tolerance({"rel": 0.01, "^step=": {"rel": 1, "abs": 50, "words": True}}, "test")
    saved = "step=50 cv= 77% L0 counts=[ 169 588 ]\nval_loss=0.758"
    assert compare(saved, "step=50 cv= 90% L1 counts=[ 300 400 ]\nval_loss=0.760", tol).problems == []
    assert compare(saved, "step=50 cv= 90% L1 counts=[ 300 400 ]\nval_loss=0.800", tol).problems
    assert parse_tolerance(0.1, "x").base == Rule(rel=0.1)
    counts = parse_tolerance({"abs": 0.01, "counts": 3}, "x")
    assert compare("dead=40 loss=1.000", "dead=43 loss=1.009", counts).problems == []  # whole numbers: counts
    assert compare("dead=40 loss=1.000", "dead=44 loss=1.000", counts).problems
    assert compare("dead=40 loss=1.000", "dead=40 loss=1.020", counts).problems
    with pytest.raises(Exception, match="tolerance is a number"):
        parse_tolerance({"rel": 0.1, "^x": {"relative": 1}}, "x")


def test_a_words_line_may_show_a_word_where_a_number_was():
    """`-` (no such step) on one machine, 216 on another: with words: true the line is not a problem,
    and its numbers are not paired; without it, it is one."""
    saved, fresh = "    2   1.55e-02   216   214", "    2   4.77e-07     -     -"
    assert compare(saved, fresh, parse_tolerance({"^ +2 ": {"rel": 1, "words": True}}, "x")).problems == []
    assert compare(saved, fresh, parse_tolerance({"^ +2 ": {"rel": 1}}, "x")).problems


QUICK_SECONDS = 30  # CI re-runs every output whose command took at most this long when recorded

PHASES = sorted(int(p.name.split("-")[1]) for p in ROOT.glob("labs/phase-*"))


@pytest.mark.slow
@pytest.mark.alone
@pytest.mark.parametrize("phase", PHASES)
def test_a_fresh_run_reproduces_the_quick_outputs(phase):
    """Every output but the `long` sweeps and those that took over QUICK_SECONDS when recorded
    (`just docs-outputs --check` re-runs them all): exactly on the machine that recorded them, within
    each output's tolerance (and the claims re-checked) elsewhere. Runs alone (`just test-slow` runs the
    `alone` tests after the others, one at a time): a training run beside another is not the run timed."""
    said = []
    problems = outputs.check(ROOT, phase=phase, fresh=True, echo=said.append, skip_long=True,
                             max_seconds=QUICK_SECONDS)
    print("\n".join(line for line in said if not line.startswith("re-running")))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("phase", PHASES)
def test_every_output_has_its_recorded_time_and_ci_reruns_some_of_each_phase(phase):
    specs = outputs.load_specs(ROOT, phase)
    took = outputs.recorded_seconds(specs[0].phase_dir)
    missing = [s.name for s in specs if s.name not in took]
    assert not missing, f"phase {phase}: no recorded time for {missing}: run `just docs-outputs --phase {phase}`"
    quick = [s.name for s in specs if not s.long and took[s.name] <= QUICK_SECONDS]
    assert quick, f"phase {phase}: every output takes over {QUICK_SECONDS} s, so CI re-runs none of them"


def test_filling_one_phase_leaves_other_phases_blocks_and_refuses_unknown_names(tmp_path):
    from minimoe.course.catalog import CourseError

    page = tmp_path / "labs" / "phase-36-x" / "a.md"
    page.parent.mkdir(parents=True)
    page.write_text("<!-- output: mine -->\n<!-- /output -->\n<!-- output: later -->\nold\n<!-- /output -->\n")
    outputs.fill_pages(tmp_path, {"mine": "$ just x\n1\n"}, {"mine", "later"})
    assert page.read_text() == ("<!-- output: mine -->\n```text\n$ just x\n1\n```\n<!-- /output -->\n"
                                "<!-- output: later -->\nold\n<!-- /output -->\n")
    with pytest.raises(CourseError, match="no output named 'later'"):
        outputs.fill_pages(tmp_path, {"mine": "$ just x\n1\n"})


def _one_phase(tmp_path, record, printed="loss=1.02 count=7", tolerance=None):
    """A course of one phase whose one output prints `printed`; its page shows loss=1.00 count=7."""
    pdir = tmp_path / "labs" / "phase-36-x"
    (pdir / "outputs").mkdir(parents=True)
    (tmp_path / "justfile").write_text(f"show:\n    @echo '{printed}'\n")
    spec = "- name: a\n  command: show\n" + (f"  tolerance: {tolerance}\n" if tolerance is not None else "")
    (pdir / "outputs.yaml").write_text(spec)
    (pdir / "outputs" / "a.txt").write_text("$ just show\nloss=1.00 count=7\n")
    if record:
        numerics.record(pdir, record)
    return pdir


OTHER_MACHINE = {"hash": "0" * 16, "cpu": "x86_64 AVX2", "torch": "2.13.0+cpu"}


def test_a_phase_made_on_other_float_arithmetic_is_compared_within_its_tolerance(tmp_path):
    _one_phase(tmp_path, OTHER_MACHINE, tolerance="{rel: 0.05}")
    said = []
    assert outputs.check(tmp_path, fresh=True, echo=said.append) == []
    summary = said[-1]
    assert "1 outputs re-run, 2 numbers compared" in summary and "largest relative difference allowed: 0.020" in summary
    assert any("0000000000000000" in line and "tolerance" in line for line in said)


def test_a_phase_made_on_other_float_arithmetic_fails_beyond_its_tolerance(tmp_path):
    _one_phase(tmp_path, OTHER_MACHINE, tolerance="{rel: 0.01}")
    problems = outputs.check(tmp_path, fresh=True, echo=lambda *a: None)
    assert len(problems) == 1 and "beyond its tolerance" in problems[0] and "1.00 vs 1.02" in problems[0]


def test_claim_tests_run_on_the_fresh_outputs_of_another_machine(tmp_path):
    _one_phase(tmp_path, OTHER_MACHINE, printed="loss=1.20 count=7", tolerance="{rel: 0.5}")
    claims = tmp_path / "tests" / "course"
    claims.mkdir(parents=True)
    (claims / "test_claims_phase36.py").write_text(
        "from pathlib import Path\nfrom minimoe.course.outputs_read import read_output\n"
        "def test_loss_is_below_1_1():\n"
        "    assert float(read_output(Path(__file__).parents[2], 'a').split('loss=')[1].split()[0]) < 1.1\n")
    problems = outputs.check(tmp_path, fresh=True, echo=lambda *a: None)
    assert len(problems) == 1 and "claim test fails on the fresh outputs" in problems[0], problems
    assert "test_loss_is_below_1_1" in problems[0]


def test_a_phase_without_a_numerics_record_is_a_problem(tmp_path):
    _one_phase(tmp_path, None)
    problems = outputs.check(tmp_path, fresh=True, echo=lambda *a: None)
    assert any("numerics.json is missing" in p for p in problems), problems


def test_a_phase_made_here_is_compared_exactly(tmp_path):
    _one_phase(tmp_path, numerics.fingerprint(), tolerance="{rel: 0.5}")
    said = []
    problems = outputs.check(tmp_path, fresh=True, echo=said.append)
    assert len(problems) == 1 and "a fresh run differs from the page:" in problems[0]  # 1.02 != 1.00, tolerance or not
    assert "compared exactly" in said[-1]


@pytest.mark.slow
def test_the_numerics_fingerprint_is_repeatable_and_tracks_the_cpu_kernels():
    import subprocess
    import sys

    import torch

    here = numerics.fingerprint()
    assert dict(numerics._fingerprint.__wrapped__()) == here  # computed again, not the cached value
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        pytest.skip("needs an AVX-512 CPU to compare with its AVX2 kernels")
    code = "from minimoe.course import numerics; print(numerics.fingerprint()['hash'])"
    env = {**__import__("os").environ, "ATEN_CPU_CAPABILITY": "avx2"}
    avx2 = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert avx2.stdout.strip() != here["hash"]


def test_every_lab00_shows_a_figure_its_run_made():
    """Each phase's lab 00 shows its key result as a plot made by the run behind its numbers: an image in
    outputs/ that an outputs.yaml entry copies from its run (`image:`) or draws from its text (`plot:`)."""
    made = {s.png.relative_to(ROOT).as_posix() for s in outputs.load_specs(ROOT) if s.image or s.plot}
    for page in sorted(ROOT.glob("labs/phase-*/00-*.md")):
        figures = re.findall(r"!\[[^\]]*\]\((outputs/[^)]+\.png)\)", page.read_text(encoding="utf-8"))
        assert figures, f"{page.relative_to(ROOT)} shows no figure"
        for f in figures:
            path = (page.parent / f).relative_to(ROOT).as_posix()
            assert path in made and (ROOT / path).is_file(), f"{page.name}: {f} is not made by a run"


def test_each_plot_reads_its_saved_output(tmp_path):
    from minimoe.course import outputs_plots

    for s in (s for s in outputs.load_specs(ROOT) if s.plot):
        outputs_plots.draw(s.plot, s.txt.read_text(encoding="utf-8"), tmp_path / f"{s.name}.png")
        assert (tmp_path / f"{s.name}.png").stat().st_size > 10_000
