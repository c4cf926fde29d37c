"""Lab outputs cannot go stale: pages show the saved outputs, and a fresh run reproduces them."""

from pathlib import Path

import pytest

from minimoe.course import outputs

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_block_matches_its_saved_output():
    problems = outputs.check(ROOT, fresh=False)
    assert not problems, "\n".join(problems)


def test_every_output_block_has_a_spec_and_every_spec_is_shown():
    names = {s.name for s in outputs.load_specs(ROOT)}
    shown = {n for page in ROOT.glob("labs/phase-*/*.md") for n in outputs.page_blocks(page)}
    assert shown <= names, f"blocks without an outputs.yaml entry: {sorted(shown - names)}"
    assert names <= shown, f"outputs.yaml entries no page shows: {sorted(names - shown)}"


def test_differences_tolerates_only_small_numeric_changes():
    assert outputs.differences("a=1.000 b=[ 10 20 ]", "a=1.010 b=[ 10 20 ]", rel=0.02) == []
    assert outputs.differences("a=1.000", "a=1.100", rel=0.02)
    assert outputs.differences("a=1.000", "b=1.000", rel=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("phase", sorted(int(p.name.split("-")[1]) for p in ROOT.glob("labs/phase-*")))
def test_a_fresh_run_reproduces_every_output(phase):
    """Every output but the `long` sweeps (`just docs-outputs --check` re-runs those too)."""
    problems = outputs.check(ROOT, phase=phase, fresh=True, echo=lambda *a: None, skip_long=True)
    assert not problems, "\n".join(problems)


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
