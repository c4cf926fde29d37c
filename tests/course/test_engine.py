"""The course engine: switching breaks, refusals, notes, hints, grading — on a scratch copy of the repo."""

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from minimoe.course import grade as grading
from minimoe.course import learners, switch
from minimoe.course.catalog import CourseError, load_catalog, lookup
from minimoe.course.cli import main as course_main
from minimoe.course.notes import read_records

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path):
    """A scratch copy of the course (src, tests, labs): the real checkout is never touched."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "outputs")
    for name in ("src", "tests", "labs"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=ignore)
    return tmp_path


@pytest.fixture
def catalog(repo):
    return load_catalog(repo)


def test_on_off_round_trip_is_byte_exact(repo, catalog):
    for b in catalog.values():
        before = (repo / b.target).read_bytes()
        switch.switch_on(b, repo)
        assert switch.status(b, repo) == "on" and (repo / b.target).read_bytes() != before
        assert switch.switch_off(b, repo) is True
        assert (repo / b.target).read_bytes() == before


def test_refuses_when_the_line_was_edited_and_keeps_the_edit(repo, catalog):
    b = catalog["36-01"]
    path = repo / b.target
    edited = path.read_text().replace(b.old, b.old + "  # my note")
    path.write_text(edited)
    assert switch.status(b, repo) == "off"  # a trailing comment keeps the line recognisable
    path.write_text(path.read_text().replace("aux_alpha * aux", "aux_alpha * aux * 1.0"))
    with pytest.raises(CourseError, match="not in its original form.*your edits are kept"):
        switch.switch_on(b, repo)
    assert "aux_alpha * aux * 1.0" in path.read_text()


def test_already_on_and_not_on_messages(repo, catalog):
    b = catalog["36-02"]
    switch.switch_on(b, repo)
    with pytest.raises(CourseError, match="already on"):
        switch.switch_on(b, repo)
    switch.switch_off(b, repo)
    with pytest.raises(CourseError, match="is not on"):
        switch.switch_off(b, repo)


def test_off_keeps_other_edits_in_the_same_file(repo, catalog):
    b = catalog["36-03"]
    switch.switch_on(b, repo)
    path = repo / b.target
    path.write_text(path.read_text() + "\n# a learner's note\n")
    assert switch.switch_off(b, repo) is False  # not byte-identical: the learner's note is kept
    assert path.read_text().endswith("# a learner's note\n") and b.old in path.read_text()


def test_unknown_id_suggests_the_closest(catalog):
    with pytest.raises(CourseError, match="did you mean 36-01"):
        lookup(catalog, "36-1")


def test_interrupted_write_leaves_the_file_intact(repo, catalog, monkeypatch):
    b = catalog["36-01"]
    path = repo / b.target
    before = path.read_bytes()

    def boom(*a):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        switch.switch_on(b, repo)
    assert path.read_bytes() == before
    assert not list(path.parent.glob(".*.tmp"))


def test_ctrl_c_during_the_switch_is_held_until_the_write_is_done(repo, catalog, monkeypatch):
    b = catalog["36-01"]
    real = switch.atomic_write

    def write_then_sigint(path, data):
        os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of the critical section
        real(path, data)

    monkeypatch.setattr(switch, "atomic_write", write_then_sigint)
    with pytest.raises(KeyboardInterrupt):
        switch.switch_on(b, repo)
    assert switch.status(b, repo) == "on"  # the file and the state were both written
    assert "36-01" in switch.read_state(repo)["breaks"]


@pytest.mark.parametrize("content,match", [
    ("id: [unclosed", "not valid YAML at line"),
    ("id: !!python/object:os.system x", "YAML tags"),
    ("- just\n- a list", "expected a mapping"),
])
def test_malformed_catalog_entry_names_file_and_problem(repo, content, match):
    (repo / "labs/phase-36-routing-and-balance/breaks/36-99.yaml").write_text(content)
    with pytest.raises(CourseError, match=match) as e:
        load_catalog(repo)
    assert "36-99.yaml" in str(e.value)


def test_catalog_entry_missing_a_field_is_named(repo):
    src = repo / "labs/phase-36-routing-and-balance/breaks/36-01.yaml"
    src.write_text(src.read_text().replace("hidden_cause:", "hidden_causes:"))
    with pytest.raises(CourseError, match="field 'hidden_cause'"):
        load_catalog(repo)


def test_learner_names_are_checked(repo):
    for bad in ("../x", "a/b", "ana garcia", "..", ""):
        with pytest.raises(CourseError, match="not allowed"):
            learners.new_learner(repo, bad)
    learners.new_learner(repo, "ana")
    with pytest.raises(CourseError, match="already exists"):
        learners.new_learner(repo, "ana")


def _fill_notes(repo, name, bid, drop=()):
    rec = {"bug-id": bid, "concept": "c", "symptom": "s", "hidden_cause": "h", "hint_1": "1", "hint_2": "2",
           "hint_3": "3", "fix_diff": "f"}
    for k in drop:
        rec.pop(k)
    lines = "\n".join(f"  {k}: {json.dumps(v)}" for k, v in rec.items())
    p = repo / f"learners/{name}/phase-36/notes/breaks.md"
    p.write_text("# notes\n\n```yaml\n-" + lines[1:] + "\n```\n")


@pytest.mark.parametrize("content,match", [
    ("```yaml\n- bug-id: [\n```\n", "not valid YAML"),
    ("```yaml\n- bug-id: !!python/object/apply:os.system ['ls']\n```\n", "YAML tags"),
    ("x" * 300_000, "too large"),
    ("```yaml\njust text\n```\n", "expected a list of records"),
])
def test_malformed_notes_get_specific_messages(repo, content, match):
    learners.new_learner(repo, "bo")
    p = repo / "learners/bo/phase-36/notes/breaks.md"
    p.write_text(content)
    with pytest.raises(CourseError, match=match):
        read_records(p)


def test_template_parses_and_is_incomplete(repo):
    learners.new_learner(repo, "cy")
    recs = read_records(repo / "learners/cy/phase-36/notes/breaks.md")
    assert len(recs) == 1 and set(recs[0]) >= {"bug-id", "fix_diff"}


def test_hints_are_recorded_per_learner(repo):
    learners.new_learner(repo, "di")
    assert learners.next_hint(repo, "di", "36-01") == (1, True)
    assert learners.next_hint(repo, "di", "36-01") == (2, True)
    assert learners.read_progress(repo, "di")["hints"]["36-01"] == [1, 2]


def test_grader_on_fixture_learners(repo, catalog):
    b = catalog["36-03"]  # its detector is fast
    # found and fixed: given the break, hints used, notes complete, break off
    learners.new_learner(repo, "fixed")
    switch.switch_on(b, repo, "fixed")
    learners.record_given(repo, "fixed", b.id, blind=False)
    learners.next_hint(repo, "fixed", b.id)
    _fill_notes(repo, "fixed", b.id)
    switch.switch_off(b, repo)
    # not fixed: the break is still on; notes miss a field
    learners.new_learner(repo, "stuck")
    learners.record_given(repo, "stuck", b.id, blind=False)
    _fill_notes(repo, "stuck", b.id, drop=("hidden_cause",))
    g = grading.grade(repo, catalog, "fixed")
    assert g.tests_unmodified and [x.passed for x in g.breaks] == [True]
    assert g.breaks[0].hints_used == 1 and g.breaks[0].reversal == "reverted"
    switch.switch_on(b, repo)
    g = grading.grade(repo, catalog, "stuck")
    (x,) = g.breaks
    assert not x.passed and not x.detectors_pass and x.reversal == "still on"
    assert any("'hidden_cause' is missing" in p for p in x.notes_problems)
    switch.switch_off(b, repo)
    # a modified test is flagged, and fails the break
    t = repo / "tests/phase36/test_combine_weights.py"
    t.write_text(t.read_text() + "\n# loosened\n")
    g = grading.grade(repo, catalog, "fixed")
    assert not g.tests_unmodified and g.modified_tests == ["tests/phase36/test_combine_weights.py (changed)"]
    assert not g.breaks[0].passed
    written = grading.write_reports(repo, g, catalog)
    assert {p.name for p in written} == {"grade.json", "grade.md"}
    assert "learner,break" in grading.gradebook(repo)


def test_manifest_matches_the_tests():
    """The checksum manifest the grader uses must describe tests/ as shipped: `just update-checksums`."""
    assert grading.modified_tests(ROOT) == [], "tests/ changed: run `just update-checksums` and commit the manifest"


def test_cli_errors_are_one_line_with_exit_2(repo, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    assert course_main(["break", "on", "99-99"]) == 2
    assert course_main(["new-learner", "../evil"]) == 2
    assert course_main(["grade", "nobody"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)


def test_ctrl_c_during_grading_writes_nothing(repo, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    learners.new_learner(repo, "eve")
    _fill_notes(repo, "eve", "36-03")

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(grading, "run_detectors", interrupted)
    assert course_main(["grade", "eve"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (repo / "learners/eve/phase-36/notes/grade.json").exists()


def test_the_listing_does_not_give_the_blind_break_away(repo, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    assert course_main(["break", "blind", "38", "--seed", "1"]) == 0
    capsys.readouterr()

    def states(phase):
        assert course_main(["list", "--phase", phase]) == 0
        rows = capsys.readouterr().out.splitlines()[1:]
        return {r.split()[1]: r.split()[2] for r in rows if r[:2].isdigit()}

    assert len(states("38")) >= 2 and set(states("38").values()) == {"?"}
    assert set(states("36").values()) == {"off"}  # other phases show their state
