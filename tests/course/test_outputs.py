"""Lab outputs cannot go stale: pages show the saved outputs, and a fresh run reproduces them."""

from pathlib import Path

import pytest

from minimoe.course import numerics, outputs

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_block_matches_its_saved_output():
    problems = outputs.check(ROOT, fresh=False)
    assert not problems, "\n".join(problems)


def test_every_output_block_has_a_spec_and_every_spec_is_shown():
    names = {s.name for s in outputs.load_specs(ROOT)}
    shown = {n for page in outputs.lab_pages(ROOT) for n in outputs.page_blocks(page)}
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
    not_compared = []
    problems = outputs.check(ROOT, phase=phase, fresh=True, echo=lambda *a: None, skip_long=True,
                             not_compared=not_compared)
    assert not problems, "\n".join(problems)
    if not_compared:
        pytest.skip("\n".join(not_compared))


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


def _one_phase(tmp_path, record):
    pdir = tmp_path / "labs" / "phase-36-x"
    (pdir / "outputs").mkdir(parents=True)
    (pdir / "outputs.yaml").write_text("- name: a\n  command: this-recipe-does-not-exist\n")
    (pdir / "outputs" / "a.txt").write_text("$ just this-recipe-does-not-exist\n1\n")
    if record:
        numerics.record(pdir, record)
    return pdir


def test_a_phase_made_on_other_float_arithmetic_is_not_compared_and_says_why(tmp_path):
    _one_phase(tmp_path, {"hash": "0" * 16, "cpu": "x86_64 AVX2", "torch": "2.13.0+cpu"})
    said, not_compared = [], []
    problems = outputs.check(tmp_path, fresh=True, echo=said.append, not_compared=not_compared)
    assert problems == []  # nothing was re-run (the recipe would fail)
    assert len(not_compared) == 1 and "0000000000000000" in not_compared[0]
    assert "just docs-outputs --phase 36" in not_compared[0] and said == ["NOT COMPARED " + not_compared[0]]


def test_a_phase_without_a_numerics_record_is_a_problem(tmp_path):
    _one_phase(tmp_path, None)
    problems = outputs.check(tmp_path, fresh=True, echo=lambda *a: None)
    assert any("numerics.json is missing" in p for p in problems), problems


def test_a_phase_made_here_is_re_run_and_compared(tmp_path):
    _one_phase(tmp_path, numerics.fingerprint())
    problems = outputs.check(tmp_path, fresh=True, echo=lambda *a: None)
    assert any("a fresh run differs" in p for p in problems), problems  # the recipe fails: its text differs


def test_the_numerics_fingerprint_is_repeatable_and_tracks_the_cpu_kernels():
    import subprocess
    import sys

    import torch

    here = numerics.fingerprint()
    assert numerics.fingerprint() == here
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        pytest.skip("needs an AVX-512 CPU to compare with its AVX2 kernels")
    code = "from minimoe.course import numerics; print(numerics.fingerprint()['hash'])"
    env = {**__import__("os").environ, "ATEN_CPU_CAPABILITY": "avx2"}
    avx2 = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert avx2.stdout.strip() != here["hash"]
